package errdefs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"golang.org/x/sys/unix"
)

// httpErrorBody is the body of an error response, shaped like Connect's.
type httpErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteHTTP writes err as an error response: the HTTP status of its
// category and a JSON body shaped like Connect's, {"code":..,"message":..}.
func WriteHTTP(w http.ResponseWriter, err error) {
	code := Code(err)
	WriteHTTPStatus(w, httpStatus(code, err), code, Message(ToConnect(err)))
}

// WriteHTTPStatus writes an error response with this status, code and message.
func WriteHTTPStatus(w http.ResponseWriter, status int, code connect.Code, msg string) {
	body, _ := json.Marshal(httpErrorBody{Code: code.String(), Message: msg})
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Last-Modified")
	h.Del("X-Hutch-Mode")
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(body)
}

func httpStatus(code connect.Code, err error) int {
	switch code {
	case connect.CodeInvalidArgument:
		return http.StatusBadRequest
	case connect.CodeNotFound:
		return http.StatusNotFound
	case connect.CodeAlreadyExists:
		return http.StatusConflict
	case connect.CodeFailedPrecondition:
		return http.StatusPreconditionFailed
	case connect.CodePermissionDenied:
		return http.StatusForbidden
	case connect.CodeUnauthenticated:
		return http.StatusUnauthorized
	case connect.CodeResourceExhausted:
		if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
			return http.StatusInsufficientStorage
		}
		return http.StatusTooManyRequests
	case connect.CodeDeadlineExceeded:
		return http.StatusGatewayTimeout
	case connect.CodeUnavailable:
		return http.StatusServiceUnavailable
	case connect.CodeUnimplemented:
		return http.StatusNotImplemented
	case connect.CodeCanceled:
		return 499 // client closed request, as Connect uses
	}
	return http.StatusInternalServerError
}

// FromHTTP turns a failed response written by WriteHTTP (or any HTTP
// error) into a category error carrying the server's message, so
// callers can use errors.Is. It returns nil for a 2xx response. It reads,
// but does not close, resp.Body.
func FromHTTP(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var we httpErrorBody
	if json.Unmarshal(body, &we) == nil && we.Code != "" {
		var code connect.Code
		if code.UnmarshalText([]byte(we.Code)) == nil {
			return FromConnect(connect.NewError(code, errors.New(we.Message)))
		}
	}
	// Not our body (a proxy's page, a 416 from range handling): the status
	// decides the category.
	msg := strings.TrimSpace(string(body))
	if msg == "" || len(msg) > 512 {
		msg = http.StatusText(resp.StatusCode)
	}
	return fmt.Errorf("http %d: %s: %w", resp.StatusCode, msg, statusCategory(resp.StatusCode))
}

func statusCategory(status int) error {
	switch status {
	case http.StatusBadRequest, http.StatusRequestedRangeNotSatisfiable:
		return ErrInvalidArgument
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusConflict:
		return ErrAlreadyExists
	case http.StatusPreconditionFailed:
		return ErrFailedPrecondition
	case http.StatusForbidden:
		return ErrPermissionDenied
	case http.StatusUnauthorized:
		return ErrUnauthenticated
	case http.StatusTooManyRequests, http.StatusInsufficientStorage, http.StatusRequestEntityTooLarge:
		return ErrResourceExhausted
	case http.StatusGatewayTimeout, http.StatusRequestTimeout:
		return ErrDeadlineExceeded
	case http.StatusServiceUnavailable, http.StatusBadGateway:
		return ErrUnavailable
	}
	return ErrInternal
}
