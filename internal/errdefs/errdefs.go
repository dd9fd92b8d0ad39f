// Package errdefs defines the error categories shared by every hutch package
// and their mapping to wire codes at the RPC boundary.
package errdefs

import (
	"context"
	"errors"
	"strings"

	"connectrpc.com/connect"
)

// Category sentinels. Wrap them with context: fmt.Errorf("sandbox %q: %w", name, ErrNotFound).
var (
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrResourceExhausted  = errors.New("resource exhausted")
	ErrPermissionDenied   = errors.New("permission denied")
	ErrUnauthenticated    = errors.New("unauthenticated")
	ErrDeadlineExceeded   = errors.New("deadline exceeded")
	ErrUnavailable        = errors.New("unavailable")
	ErrInternal           = errors.New("internal")
)

var codes = []struct {
	err  error
	code connect.Code
}{
	{ErrInvalidArgument, connect.CodeInvalidArgument},
	{ErrNotFound, connect.CodeNotFound},
	{ErrAlreadyExists, connect.CodeAlreadyExists},
	{ErrFailedPrecondition, connect.CodeFailedPrecondition},
	{ErrResourceExhausted, connect.CodeResourceExhausted},
	{ErrPermissionDenied, connect.CodePermissionDenied},
	{ErrUnauthenticated, connect.CodeUnauthenticated},
	{ErrDeadlineExceeded, connect.CodeDeadlineExceeded},
	{ErrUnavailable, connect.CodeUnavailable},
	{ErrInternal, connect.CodeInternal},
}

// Code returns the wire code for err: its category, a connect error's own
// code, or internal. Errors wrap their cause and their category side by side
// ("exec: %w: %w", err, ErrUnavailable), so the category nearest the top of
// the tree wins, and at one depth the last one (the one the wrapper added)
// wins over its cause's.
func Code(err error) connect.Code {
	level := []error{err}
	for len(level) > 0 {
		var next []error
		for i := len(level) - 1; i >= 0; i-- {
			if c, ok := ownCode(level[i]); ok {
				return c
			}
		}
		for _, e := range level {
			switch u := e.(type) {
			case interface{ Unwrap() error }:
				if w := u.Unwrap(); w != nil {
					next = append(next, w)
				}
			case interface{ Unwrap() []error }:
				next = append(next, u.Unwrap()...)
			}
		}
		level = next
	}
	return connect.CodeInternal
}

// ownCode is the code e itself stands for, not counting what it wraps.
func ownCode(e error) (connect.Code, bool) {
	for _, c := range codes {
		if e == c.err {
			return c.code, true
		}
	}
	if ce, ok := e.(*connect.Error); ok {
		return ce.Code(), true
	}
	switch e {
	case context.Canceled:
		return connect.CodeCanceled, true
	case context.DeadlineExceeded:
		return connect.CodeDeadlineExceeded, true
	}
	return 0, false
}

// ToConnect converts err for the wire. Connect errors pass through; others
// get the code of their category and keep their message.
func ToConnect(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return err
	}
	return connect.NewError(Code(err), errors.New(trimCategory(err.Error())))
}

// trimCategory drops the category words that wrapping a sentinel appends
// when the rest already says them ("... not found in $PATH: not found");
// otherwise they stay, so "sandbox \"x\": not found" keeps its meaning.
func trimCategory(msg string) string {
	for _, c := range codes {
		if t, ok := strings.CutSuffix(msg, ": "+c.err.Error()); ok && strings.Contains(t, c.err.Error()) {
			return t
		}
	}
	return msg
}

// Message is err's text without the trailing category word that wrapping
// adds ("sandbox \"x\": not found" stays as is; that reads fine).
func Message(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Message()
	}
	return err.Error()
}

// FromConnect turns a wire error back into a category error, keeping the
// message, so callers can use errors.Is on what a client returned.
func FromConnect(err error) error {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return err
	}
	for _, c := range codes {
		if c.code == ce.Code() {
			return &wireError{msg: ce.Message(), cat: c.err, cause: err}
		}
	}
	return err
}

type wireError struct {
	msg   string
	cat   error
	cause error
}

func (e *wireError) Error() string   { return e.msg }
func (e *wireError) Unwrap() []error { return []error{e.cat, e.cause} }
