package exec

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
)

// BenchmarkExecTrue is the agent's own exec round trip, without a sandbox.
func BenchmarkExecTrue(b *testing.B) {
	c := newRawClient(b)
	ctx := context.Background()
	for b.Loop() {
		s, err := c.Exec(ctx, connect.NewRequest(&hutchv1.ExecRequest{Argv: []string{"/bin/true"}}))
		if err != nil {
			b.Fatal(err)
		}
		for s.Receive() {
		}
		if err := s.Err(); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkExecStdout streams 256 MiB of a command's stdout.
func BenchmarkExecStdout(b *testing.B) {
	c := newRawClient(b)
	ctx := context.Background()
	b.SetBytes(256 << 20)
	for b.Loop() {
		s, err := c.Exec(ctx, connect.NewRequest(&hutchv1.ExecRequest{Argv: []string{"head", "-c", "268435456", "/dev/zero"}}))
		if err != nil {
			b.Fatal(err)
		}
		for s.Receive() {
		}
		if err := s.Err(); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// newRawClient serves the Service as the agent does (raw Exec, no gzip) and
// returns a client that, like the daemon's, does not ask for gzip.
func newRawClient(b *testing.B) hutchv1connect.ProcessServiceClient {
	svc := newService(b, nil)
	path, h := hutchv1connect.NewProcessServiceHandler(handler{Service: svc}, connect.WithCompressMinBytes(64<<10))
	mux := http.NewServeMux()
	mux.Handle(path, h)
	mux.Handle(hutchv1connect.ProcessServiceExecProcedure, svc.ExecHandler(h, 1<<20))
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return hutchv1connect.NewProcessServiceClient(srv.Client(), srv.URL, connect.WithAcceptCompression("gzip", nil, nil))
}
