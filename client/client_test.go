package client_test

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"

	"github.com/hutch-sh/hutch/client"
)

// A daemon that is not there is recognisable by its cause, for unary calls
// and streams alike: callers (the CLI) test errors.Is, not the text.
func TestRefusedKeepsItsCause(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := client.New("http://" + ln.Addr().String())
	ln.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"unary", func() error { _, err := c.List(ctx); return err }},
		{"stream", func() error { _, err := c.Exec(ctx, "box", client.Command{Argv: []string{"true"}}); return err }},
		{"health", func() error { return c.Healthy(ctx) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("err %v does not match ECONNREFUSED", err)
			}
			if tc.name != "health" && !errors.Is(err, client.ErrUnavailable) {
				t.Errorf("err %v does not match ErrUnavailable", err)
			}
		})
	}
}
