package files

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// patternReader yields n pseudo-random bytes without holding them.
type patternReader struct {
	block []byte
	off   int64
	n     int64
}

func newPatternReader(n int64) *patternReader {
	block := make([]byte, 64<<10+13) // odd length so blocks do not align with reads
	r := rand.NewChaCha8([32]byte{1})
	r.Read(block)
	return &patternReader{block: block, n: n}
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	if rem := r.n - r.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	n := 0
	for n < len(p) {
		n += copy(p[n:], r.block[(r.off+int64(n))%int64(len(r.block)):])
	}
	r.off += int64(n)
	return n, nil
}

// heapPeak samples HeapInuse until stopped.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

func TestContentLargeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 300 MB")
	}
	const size = 300 << 20
	const heapLimit = 64 << 20
	e := newEnv(t)
	runtime.GC()
	stop := heapPeak()

	in := sha256.New()
	req, err := http.NewRequest(http.MethodPut, e.contentURL("/workspace/big.bin"), io.TeeReader(newPatternReader(size), in))
	mustDo(t, err)
	resp, err := e.srv.Client().Do(req)
	mustDo(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var res PutResult
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &res) != nil || res.Size != size {
		t.Fatalf("PUT = %d %s", resp.StatusCode, body)
	}

	resp, err = e.srv.Client().Get(e.contentURL("/workspace/big.bin"))
	mustDo(t, err)
	out := sha256.New()
	n, err := io.Copy(out, resp.Body)
	resp.Body.Close()
	mustDo(t, err)
	peak := stop()

	if n != size || resp.ContentLength != size {
		t.Errorf("read %d bytes, Content-Length %d, want %d", n, resp.ContentLength, size)
	}
	if !bytes.Equal(in.Sum(nil), out.Sum(nil)) {
		t.Error("content read back differs from what was written")
	}
	t.Logf("peak HeapInuse %d MiB for a %d MiB file", peak>>20, size>>20)
	if peak > heapLimit {
		t.Errorf("peak HeapInuse %d MiB, want under %d MiB: the file was buffered", peak>>20, heapLimit>>20)
	}
}
