package daemon

import (
	"net"
	"testing"
)

func TestSelfURL(t *testing.T) {
	for _, tc := range []struct{ listen, want string }{
		{"127.0.0.1:7777", "http://127.0.0.1:7777"},
		{"0.0.0.0:7777", "http://127.0.0.1:7777"},
		{"[::]:7777", "http://127.0.0.1:7777"},
		{"[::1]:7777", "http://[::1]:7777"},
		{"10.1.2.3:80", "http://10.1.2.3:80"},
	} {
		t.Run(tc.listen, func(t *testing.T) {
			a, err := net.ResolveTCPAddr("tcp", tc.listen)
			if err != nil {
				t.Fatal(err)
			}
			if got := selfURL(a); got != tc.want {
				t.Fatalf("selfURL(%s) = %s, want %s", tc.listen, got, tc.want)
			}
		})
	}
}
