// Package envelope reads and writes the framing of Connect streaming calls
// (5-byte envelopes around each message), for the hot path that carries exec
// output from the agent through the daemon without re-encoding it.
package envelope

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// ContentType is the Connect streaming protocol with the binary codec.
const ContentType = "application/connect+proto"

// Envelope flags.
const (
	flagCompressed = 1
	flagEndStream  = 2
)

// HeaderLen is the size of an envelope header.
const HeaderLen = 5

// Raw reports whether r is a Connect streaming call with the binary codec
// and no compression: the only kind these fast paths handle.
func Raw(r *http.Request) bool {
	enc := r.Header.Get("Connect-Content-Encoding")
	return r.Method == http.MethodPost && r.Header.Get("Content-Type") == ContentType && (enc == "" || enc == "identity")
}

// ReadRequest reads the single enveloped request message of a server-stream
// call into msg and returns the whole envelope, to forward as it is.
func ReadRequest(body io.Reader, max uint32, msg proto.Message) ([]byte, error) {
	var hdr [HeaderLen]byte
	if _, err := io.ReadFull(body, hdr[:]); err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("read request: %w", err))
	}
	if hdr[0]&flagCompressed != 0 {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("compressed message without a content encoding"))
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > max {
		return nil, connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("request of %d bytes is over the limit of %d", n, max))
	}
	env := make([]byte, HeaderLen+int(n))
	copy(env, hdr[:])
	if _, err := io.ReadFull(body, env[HeaderLen:]); err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("read request: %w", err))
	}
	if err := proto.Unmarshal(env[HeaderLen:], msg); err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("decode request: %w", err))
	}
	return env, nil
}

// WriteMessage writes msg in one envelope.
func WriteMessage(w io.Writer, msg proto.Message) error {
	b, err := proto.MarshalOptions{}.MarshalAppend(make([]byte, HeaderLen, 64), msg)
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint32(b[1:HeaderLen], uint32(len(b)-HeaderLen))
	_, err = w.Write(b)
	return err
}

// WriteEnd writes the end-of-stream envelope: success when err is nil,
// otherwise err with its wire code.
func WriteEnd(w io.Writer, err error) error {
	type wireErr struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	var end struct {
		Error *wireErr `json:"error,omitempty"`
	}
	if err != nil {
		code := errdefs.Code(err)
		if errors.Is(err, context.Canceled) {
			code = connect.CodeCanceled
		}
		end.Error = &wireErr{Code: code.String(), Message: errdefs.Message(errdefs.ToConnect(err))}
	}
	body, _ := json.Marshal(end)
	env := make([]byte, HeaderLen, HeaderLen+len(body))
	env[0] = flagEndStream
	binary.BigEndian.PutUint32(env[1:], uint32(len(body)))
	_, werr := w.Write(append(env, body...))
	return werr
}

// Copy copies envelopes from src to w, flushing after each, and reports
// whether the end-of-stream envelope went through.
func Copy(w http.ResponseWriter, src io.Reader) (bool, error) {
	rc := http.NewResponseController(w)
	buf := make([]byte, 1<<20)
	var hdr [HeaderLen]byte
	for {
		if _, err := io.ReadFull(src, hdr[:]); err != nil {
			return false, err
		}
		if _, err := w.Write(hdr[:]); err != nil {
			return false, err
		}
		n := int64(binary.BigEndian.Uint32(hdr[1:]))
		copied, err := io.CopyBuffer(w, io.LimitReader(src, n), buf)
		if err != nil {
			return false, err
		}
		if copied < n {
			return false, io.ErrUnexpectedEOF
		}
		if err := rc.Flush(); err != nil {
			return false, err
		}
		if hdr[0]&flagEndStream != 0 {
			return true, nil
		}
	}
}

// OutputHeadroom is the space to leave before output bytes in a buffer so
// FrameOutput can put the envelope and the event's field header in front of
// them without copying. Output starts 64 bytes in, so the kernel copies it
// into an aligned address: unaligned reads of a pipe are far slower.
const OutputHeadroom = 64

// frameLen is the framing in front of output: 5 envelope bytes, 1 tag byte
// and a 3-byte length.
const frameLen = HeaderLen + 4

// MaxOutput is the most output FrameOutput frames at once.
const MaxOutput = 1<<21 - 1

// FrameOutput turns buf, holding n output bytes after OutputHeadroom bytes
// of headroom, into one envelope of an ExecEvent whose field number is
// field (2 for stdout, 3 for stderr), and returns it. The length is written
// as a fixed 3-byte varint (over-long encodings are valid protobuf).
func FrameOutput(buf []byte, n int, field byte) []byte {
	f := buf[OutputHeadroom-frameLen : OutputHeadroom]
	f[0] = 0
	binary.BigEndian.PutUint32(f[1:HeaderLen], uint32(4+n))
	f[HeaderLen] = field<<3 | 2
	f[HeaderLen+1] = 0x80 | byte(n&0x7f)
	f[HeaderLen+2] = 0x80 | byte(n>>7&0x7f)
	f[HeaderLen+3] = byte(n >> 14 & 0x7f)
	return buf[OutputHeadroom-frameLen : OutputHeadroom+n]
}
