package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/client"
)

// fakeProcesses runs one pretend `cat`: it echoes its stdin once that is
// closed, or, with exitFirst, exits before reading any.
type fakeProcesses struct {
	hutchv1connect.UnimplementedProcessServiceHandler
	exitFirst bool
	writeErr  error // WriteStdin's answer when set

	mu     sync.Mutex
	stdin  bytes.Buffer
	eof    chan struct{}
	killed chan struct{} // closed when the client ended the exec early
}

var _ hutchv1connect.ProcessServiceHandler = (*fakeProcesses)(nil)

func (f *fakeProcesses) Exec(ctx context.Context, _ *connect.Request[hutchv1.ExecRequest], s *connect.ServerStream[hutchv1.ExecEvent]) error {
	if err := s.Send(&hutchv1.ExecEvent{Event: &hutchv1.ExecEvent_Started{Started: &hutchv1.ExecStarted{Id: "x1", Pid: 7}}}); err != nil {
		return err
	}
	if !f.exitFirst {
		select {
		case <-f.eof:
		case <-ctx.Done():
			close(f.killed)
			return ctx.Err()
		}
		f.mu.Lock()
		out := bytes.Clone(f.stdin.Bytes())
		f.mu.Unlock()
		if err := s.Send(&hutchv1.ExecEvent{Event: &hutchv1.ExecEvent_Stdout{Stdout: out}}); err != nil {
			return err
		}
	}
	return s.Send(&hutchv1.ExecEvent{Event: &hutchv1.ExecEvent_Exit{Exit: &hutchv1.ExecExit{Code: 3}}})
}

func (f *fakeProcesses) WriteStdin(_ context.Context, req *connect.Request[hutchv1.WriteStdinRequest]) (*connect.Response[hutchv1.WriteStdinResponse], error) {
	if f.exitFirst {
		return nil, connect.NewError(connect.CodeNotFound, errors.New(`exec "x1": not found`))
	}
	if f.writeErr != nil {
		return nil, f.writeErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stdin.Write(req.Msg.Data)
	if req.Msg.Eof {
		close(f.eof)
	}
	return connect.NewResponse(&hutchv1.WriteStdinResponse{}), nil
}

// A stdin that cannot be read or delivered fails the exec and kills the
// command; one the command does not want is no failure.
func TestExecStdin(t *testing.T) {
	boom := errors.New("disk on fire")
	for _, tc := range []struct {
		name      string
		stdin     io.Reader
		exitFirst bool
		writeErr  error
		wantOut   string
		wantErr   error // nil: exit 3
		wantKill  bool
	}{
		{name: "delivered", stdin: strings.NewReader("hello"), wantOut: "hello"},
		{name: "reader fails", stdin: io.MultiReader(strings.NewReader("part"), iotest.ErrReader(boom)), wantErr: boom, wantKill: true},
		{name: "delivery fails", stdin: strings.NewReader("hello"), writeErr: connect.NewError(connect.CodeUnavailable, errors.New("agent gone")), wantErr: client.ErrUnavailable, wantKill: true},
		{name: "command exits first", stdin: strings.NewReader("unread"), exitFirst: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeProcesses{exitFirst: tc.exitFirst, writeErr: tc.writeErr, eof: make(chan struct{}), killed: make(chan struct{})}
			mux := http.NewServeMux()
			mux.Handle(hutchv1connect.NewProcessServiceHandler(f))
			srv := httptest.NewServer(mux)
			defer srv.Close()

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out bytes.Buffer
			st, err := client.New(srv.URL).Exec(ctx, "box", client.Command{Argv: []string{"cat"}, Stdin: tc.stdin, Stdout: &out})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), "stdin") {
					t.Fatalf("Exec = %v, %v; want an error about stdin matching %v", st, err, tc.wantErr)
				}
			} else if err != nil || st.Code != 3 || out.String() != tc.wantOut {
				t.Fatalf("Exec = %+v, %v, stdout %q; want exit 3, stdout %q", st, err, out.String(), tc.wantOut)
			}
			if tc.wantKill {
				select {
				case <-f.killed:
				case <-time.After(10 * time.Second):
					t.Fatal("the command was not killed after its stdin failed")
				}
			}
		})
	}
}
