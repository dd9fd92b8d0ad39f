package mcp

import (
	"strings"
	"testing"
)

func TestCapture(t *testing.T) {
	for _, tc := range []struct {
		name      string
		limit     int
		writes    []string
		want      string // exact, when not truncated
		head      string // prefix, when truncated
		tail      string // suffix, when truncated
		truncated bool
	}{
		{name: "empty", limit: 30, want: ""},
		{name: "fits", limit: 30, writes: []string{"hello ", "world"}, want: "hello world"},
		{name: "exactly the limit", limit: 9, writes: []string{"abcdefghi"}, want: "abcdefghi"},
		{name: "one write over", limit: 9, writes: []string{"abcdefghijkl"}, head: "abc\n[... 3 bytes omitted", tail: "...]\nghijkl", truncated: true},
		{name: "many small writes", limit: 6, writes: strings.Split(strings.Repeat("x", 1000)+"END", ""), head: "xx\n[... 997 bytes omitted: the output is 1003 bytes", tail: "xEND", truncated: true},
		{name: "invalid utf-8 is replaced", limit: 30, writes: []string{"a\xffb"}, want: "a\uFFFDb"},
		{name: "split character at the tail's start is dropped", limit: 6, writes: []string{"ab", "zzzzzz", "é", "xyz"}, head: "ab\n[... 8 bytes omitted", tail: "...]\nxyz", truncated: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCapture(tc.limit)
			for _, w := range tc.writes {
				if n, err := c.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			got := c.String()
			if c.truncated() != tc.truncated {
				t.Fatalf("truncated = %v, want %v (%q)", c.truncated(), tc.truncated, got)
			}
			if !tc.truncated {
				if got != tc.want {
					t.Fatalf("String = %q, want %q", got, tc.want)
				}
				return
			}
			if !strings.HasPrefix(got, tc.head) || !strings.HasSuffix(got, tc.tail) {
				t.Fatalf("String = %q, want prefix %q and suffix %q", got, tc.head, tc.tail)
			}
		})
	}
}

func TestCaptureBoundsMemory(t *testing.T) {
	c := newCapture(300)
	chunk := []byte(strings.Repeat("y", 1000))
	for range 10_000 {
		c.Write(chunk)
	}
	if cap(c.first) > 300 || cap(c.ring) > 3*300 {
		t.Fatalf("kept %d + %d bytes of capacity for a limit of 300", cap(c.first), cap(c.ring))
	}
	if !strings.Contains(c.String(), "the output is 10000000 bytes in all") {
		t.Fatalf("no note of the size in %q", c.String())
	}
}
