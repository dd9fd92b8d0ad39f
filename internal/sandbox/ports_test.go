package sandbox

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

func TestPorts(t *testing.T) {
	var r Record
	r.Name = "a"
	r1, tok := r.Expose(8080)
	if len(tok) != TokenLen || strings.Trim(tok, tokenAlphabet) != "" {
		t.Fatalf("token %q: want %d of %s", tok, TokenLen, tokenAlphabet)
	}
	if len(r.Ports) != 0 {
		t.Fatal("Expose wrote the original record's ports")
	}
	r2, again := r1.Expose(8080)
	if again != tok || len(r2.Ports) != 1 {
		t.Fatalf("exposing again: token %q ports %v, want the same token", again, r2.Ports)
	}
	r3, tok3 := r2.Expose(3000)
	if tok3 == tok || !slices.Equal(r3.ExposedPorts(), []int{3000, 8080}) || len(r2.Ports) != 1 {
		t.Fatalf("second port: %v (first record now %v)", r3.ExposedPorts(), r2.Ports)
	}
	tests := []struct {
		name  string
		port  int
		token string
		want  bool
	}{
		{"right token", 8080, tok, true},
		{"other port's token", 8080, tok3, false},
		{"empty token", 8080, "", false},
		{"prefix of the token", 8080, tok[:8], false},
		{"port not exposed", 9000, tok, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r3.Opens(tt.port, tt.token); got != tt.want {
				t.Fatalf("Opens(%d, %q) = %v, want %v", tt.port, tt.token, got, tt.want)
			}
		})
	}
	r4, err := r3.Unexpose(8080)
	if err != nil || r4.Opens(8080, tok) || !r3.Opens(8080, tok) || !r4.Opens(3000, tok3) {
		t.Fatalf("Unexpose: %v %v", r4.Ports, err)
	}
	if _, err := r4.Unexpose(8080); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Unexpose of an unexposed port: %v, want not found", err)
	}
	for _, p := range []int{0, -1, 65536} {
		if err := ValidatePort(p); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ValidatePort(%d) = %v, want invalid argument", p, err)
		}
	}
	if err := ValidatePort(65535); err != nil {
		t.Errorf("ValidatePort(65535) = %v", err)
	}
}
