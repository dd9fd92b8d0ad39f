package mcp

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// capture keeps the first head and the last tail bytes written to it, so a
// command that prints gigabytes costs a bounded amount of memory and the
// model sees both how output began and how it ended (errors come last).
type capture struct {
	head, tail int
	first      []byte
	ring       []byte // the last bytes after first filled, up to tail
	total      int64
}

func newCapture(limit int) *capture {
	return &capture{head: limit / 3, tail: limit - limit/3}
}

func (c *capture) Write(p []byte) (int, error) {
	n := len(p)
	c.total += int64(n)
	if room := c.head - len(c.first); room > 0 {
		k := min(room, len(p))
		c.first = append(c.first, p[:k]...)
		p = p[k:]
	}
	if len(p) == 0 {
		return n, nil
	}
	c.ring = append(c.ring, p...)
	// Keep up to twice tail, so that dropping old bytes is amortized O(1).
	if len(c.ring) > 2*c.tail {
		c.ring = append([]byte(nil), c.ring[len(c.ring)-c.tail:]...)
	}
	return n, nil
}

// last is the tail kept.
func (c *capture) last() []byte {
	if len(c.ring) > c.tail {
		return c.ring[len(c.ring)-c.tail:]
	}
	return c.ring
}

// truncated reports whether bytes were dropped.
func (c *capture) truncated() bool {
	return c.total > int64(len(c.first)+len(c.last()))
}

// String is the output kept, with a note where bytes were dropped.
func (c *capture) String() string {
	tail := c.last()
	if !c.truncated() {
		return validUTF8(string(c.first) + string(tail))
	}
	// Start the tail at a character, so a split one does not show as noise.
	for k := 0; k < utf8.UTFMax && len(tail) > 0 && !utf8.RuneStart(tail[0]); k++ {
		tail = tail[1:]
	}
	dropped := c.total - int64(len(c.first)+len(tail))
	return fmt.Sprintf("%s\n[... %d bytes omitted: the output is %d bytes in all; redirect it to a file and read parts of it with read_file, grep, head or tail ...]\n%s",
		validUTF8(string(c.first)), dropped, c.total, validUTF8(string(tail)))
}

// validUTF8 replaces invalid bytes, which JSON cannot carry as they are.
func validUTF8(s string) string {
	return strings.ToValidUTF8(s, "\uFFFD")
}

// writeStreams appends each stream that printed something, under a header.
func writeStreams(b *strings.Builder, stdout, stderr string) {
	for _, s := range [...]struct{ name, text string }{{"stdout", stdout}, {"stderr", stderr}} {
		if s.text != "" {
			fmt.Fprintf(b, "--- %s ---\n%s\n", s.name, strings.TrimSuffix(s.text, "\n"))
		}
	}
}
