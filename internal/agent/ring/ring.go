// Package ring keeps the tail of an output stream for readers that attach
// late or resume: background process logs and terminal scrollback.
package ring

// Ring keeps the last size bytes written to one output stream. Offsets
// count from the start of the stream's whole output, so a reader can resume
// where it left off and learn what was dropped in between. The buffer grows
// as output arrives, so a quiet process costs little.
type Ring struct {
	size int
	buf  []byte // byte at offset o is buf[o%size]; len(buf) < size only before the first wrap
	end  int64  // total bytes ever written
}

// New returns a Ring that keeps the last size bytes.
func New(size int) *Ring {
	if size <= 0 {
		size = 1
	}
	return &Ring{size: size}
}

// Start is the offset of the oldest byte still kept.
func (r *Ring) Start() int64 {
	return max(0, r.end-int64(r.size))
}

// Write appends p.
func (r *Ring) Write(p []byte) {
	if len(p) > r.size {
		r.end += int64(len(p) - r.size)
		p = p[len(p)-r.size:]
	}
	if len(r.buf) < r.size {
		need := r.end + int64(len(p))
		if r.end != int64(len(r.buf)) || need > int64(r.size) {
			need = int64(r.size) // about to wrap (or skipped ahead): use the whole ring
		}
		if need > int64(cap(r.buf)) {
			c := min(int64(r.size), max(need, 2*int64(cap(r.buf)), 4096))
			nb := make([]byte, len(r.buf), c)
			copy(nb, r.buf)
			r.buf = nb
		}
		r.buf = r.buf[:max(int64(len(r.buf)), need)]
	}
	for len(p) > 0 {
		i := int(r.end % int64(r.size))
		n := copy(r.buf[i:], p)
		r.end += int64(n)
		p = p[n:]
	}
}

// Read copies up to n bytes from offset off on. When off is older than what
// is kept, it reads from the oldest kept byte instead and reports truncated;
// an offset past the end reads nothing from the end.
func (r *Ring) Read(off int64, n int) (data []byte, at int64, truncated bool) {
	at = min(max(off, 0), r.end)
	if s := r.Start(); at < s {
		at, truncated = s, true
	}
	avail := r.end - at
	if avail == 0 || n <= 0 {
		return nil, at, truncated
	}
	m := int(min(avail, int64(n)))
	data = make([]byte, m)
	i := int(at % int64(r.size))
	k := copy(data, r.buf[i:])
	copy(data[k:], r.buf)
	return data, at, truncated
}

// End is the offset after the newest byte: how much was ever written.
func (r *Ring) End() int64 { return r.end }

// Size is how many bytes the Ring keeps.
func (r *Ring) Size() int { return r.size }

// Allocated is how many bytes of memory the Ring holds now: it grows with
// the output, up to Size.
func (r *Ring) Allocated() int { return cap(r.buf) }
