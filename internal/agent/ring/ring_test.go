package ring

import (
	"bytes"
	"fmt"
	"testing"
)

func TestRing(t *testing.T) {
	tests := []struct {
		name      string
		size      int
		writes    []string
		off       int64
		n         int
		want      string
		wantAt    int64
		wantTrunc bool
	}{
		{"empty", 8, nil, 0, 8, "", 0, false},
		{"all kept", 8, []string{"abc", "def"}, 0, 100, "abcdef", 0, false},
		{"from an offset", 8, []string{"abc", "def"}, 4, 100, "ef", 4, false},
		{"limited read", 8, []string{"abcdef"}, 1, 3, "bcd", 1, false},
		{"exactly full", 4, []string{"ab", "cd"}, 0, 10, "abcd", 0, false},
		{"wrapped", 4, []string{"abc", "def"}, 0, 10, "cdef", 2, true},
		{"wrapped, offset kept", 4, []string{"abc", "def"}, 3, 10, "def", 3, false},
		{"write larger than ring", 4, []string{"a", "bcdefgh"}, 0, 10, "efgh", 4, true},
		{"first write larger than ring", 4, []string{"abcdefgh", "ij"}, 0, 10, "ghij", 6, true},
		{"offset past end", 4, []string{"ab"}, 9, 10, "", 2, false},
		{"many small wraps", 5, []string{"12", "34", "56", "78", "9"}, 0, 10, "56789", 4, true},
		{"wrapped read across the seam", 5, []string{"1234", "5678"}, 4, 3, "567", 4, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(tt.size)
			total := 0
			for _, w := range tt.writes {
				r.Write([]byte(w))
				total += len(w)
			}
			if r.end != int64(total) {
				t.Errorf("end = %d, want %d", r.end, total)
			}
			got, at, trunc := r.Read(tt.off, tt.n)
			if string(got) != tt.want || at != tt.wantAt || trunc != tt.wantTrunc {
				t.Errorf("read(%d, %d) = %q at %d truncated %v; want %q at %d truncated %v", tt.off, tt.n, got, at, trunc, tt.want, tt.wantAt, tt.wantTrunc)
			}
			if cap(r.buf) > tt.size {
				t.Errorf("buffer capacity %d exceeds ring size %d", cap(r.buf), tt.size)
			}
		})
	}
}

// Random-sized writes always leave exactly the last size bytes readable, and
// the buffer never grows past size.
func TestRingKeepsTail(t *testing.T) {
	const size = 10000
	r := New(size)
	var all bytes.Buffer
	for i := 0; all.Len() < 5*size; i++ {
		chunk := []byte(fmt.Sprintf("%d:%s\n", i, bytes.Repeat([]byte("x"), i*37%3001)))
		r.Write(chunk)
		all.Write(chunk)
		want := all.Bytes()[max(0, all.Len()-size):]
		got, at, _ := r.Read(0, 2*size)
		if !bytes.Equal(got, want) || at != int64(all.Len()-len(want)) {
			t.Fatalf("after %d bytes: read %d bytes at %d, want the last %d", all.Len(), len(got), at, len(want))
		}
		if cap(r.buf) > size {
			t.Fatalf("buffer capacity %d exceeds ring size %d", cap(r.buf), size)
		}
	}
}
