package errdefs

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"connectrpc.com/connect"
)

var categories = []struct {
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

func TestRoundTrip(t *testing.T) {
	for _, c := range categories {
		t.Run(c.code.String(), func(t *testing.T) {
			err := fmt.Errorf("sandbox %q: %w", "demo", c.err)
			if got := Code(err); got != c.code {
				t.Fatalf("Code = %v, want %v", got, c.code)
			}
			wire := ToConnect(err)
			var ce *connect.Error
			if !errors.As(wire, &ce) || ce.Code() != c.code {
				t.Fatalf("ToConnect = %#v, want a connect error with code %v", wire, c.code)
			}
			want := `sandbox "demo": ` + c.err.Error()
			if ce.Message() != want {
				t.Errorf("wire message %q, want %q", ce.Message(), want)
			}
			back := FromConnect(wire)
			if !errors.Is(back, c.err) {
				t.Errorf("FromConnect(%v) does not match %v", wire, c.err)
			}
			for _, other := range categories {
				if other.err != c.err && errors.Is(back, other.err) {
					t.Errorf("FromConnect matches %v too", other.err)
				}
			}
			if back.Error() != want {
				t.Errorf("client error %q, want %q", back.Error(), want)
			}
			if Code(back) != c.code {
				t.Errorf("Code(FromConnect) = %v", Code(back))
			}
			if !errors.As(back, &ce) {
				t.Error("the wire error is not kept as a cause")
			}
		})
	}
}

func TestCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want connect.Code
	}{
		{"plain error", errors.New("boom"), connect.CodeInternal},
		{"connect error keeps its code", connect.NewError(connect.CodeAborted, errors.New("x")), connect.CodeAborted},
		{"wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", ErrNotFound)), connect.CodeNotFound},
		{"joined", errors.Join(errors.New("x"), ErrUnavailable), connect.CodeUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Code(tt.err); got != tt.want {
				t.Errorf("Code(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestToConnect(t *testing.T) {
	if ToConnect(nil) != nil {
		t.Error("ToConnect(nil) != nil")
	}
	ce := connect.NewError(connect.CodeAborted, errors.New("x"))
	if got := ToConnect(fmt.Errorf("wrapped: %w", ce)); !errors.Is(got, ce) {
		t.Errorf("connect errors must pass through, got %v", got)
	}
	err := ToConnect(errors.New("no category"))
	if connect.CodeOf(err) != connect.CodeInternal {
		t.Errorf("uncategorised error code %v, want internal", connect.CodeOf(err))
	}
}

func TestFromConnect(t *testing.T) {
	if FromConnect(nil) != nil {
		t.Error("FromConnect(nil) != nil")
	}
	plain := errors.New("dial tcp: refused")
	if got := FromConnect(plain); got != plain {
		t.Errorf("non-connect error changed: %v", got)
	}
	unknown := connect.NewError(connect.CodeAborted, errors.New("x"))
	if got := FromConnect(unknown); got != unknown {
		t.Errorf("code without category changed: %v", got)
	}
}

func TestTrimCategory(t *testing.T) {
	tests := []struct{ in, want string }{
		// The category stays unless the rest already says it.
		{`sandbox "x": not found`, `sandbox "x": not found`},
		{`exec "x": executable file not found in $PATH: not found`, `exec "x": executable file not found in $PATH`},
		{`a: b: invalid argument`, `a: b: invalid argument`},
		{`deadline exceeded`, `deadline exceeded`},
		{`not found: exec "x"`, `not found: exec "x"`},
		{`image: not found: not found`, `image: not found`},
		{`command timed out: deadline exceeded`, `command timed out: deadline exceeded`},
		{`x: internal`, `x: internal`},
		{`x:internal`, `x:internal`},
		{``, ``},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := trimCategory(tt.in); got != tt.want {
				t.Errorf("trimCategory(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestMessage(t *testing.T) {
	if got := Message(connect.NewError(connect.CodeNotFound, errors.New("sandbox \"x\""))); got != `sandbox "x"` {
		t.Errorf("Message = %q", got)
	}
	if got := Message(fmt.Errorf("sandbox %q: %w", "x", ErrNotFound)); got != `sandbox "x": not found` {
		t.Errorf("Message = %q", got)
	}
}

func TestCodeKeepsCauseAndCategory(t *testing.T) {
	cause := fmt.Errorf("dial: %w", context.Canceled)
	err := fmt.Errorf("exec: %w: %w", cause, ErrUnavailable)
	if !errors.Is(err, context.Canceled) {
		t.Error("the cause is no longer matchable")
	}
	if got := Code(err); got != connect.CodeUnavailable {
		t.Errorf("Code = %v, want unavailable (the wrapper's category)", got)
	}
	inner := fmt.Errorf("sandbox %q: %w", "x", ErrNotFound)
	if got := Code(fmt.Errorf("wake: %w: %w", inner, ErrFailedPrecondition)); got != connect.CodeFailedPrecondition {
		t.Errorf("Code = %v, want failed_precondition", got)
	}
	if got := Code(fmt.Errorf("get: %w", inner)); got != connect.CodeNotFound {
		t.Errorf("Code = %v, want not_found from the cause", got)
	}
	if got := Code(errors.New("plain")); got != connect.CodeInternal {
		t.Errorf("Code = %v, want internal", got)
	}
}
