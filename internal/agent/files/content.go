package files

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"

	"connectrpc.com/connect"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// PutResult is the JSON body of a successful PUT.
type PutResult struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
}

// ContentHandler serves file contents at ?path=P: GET (with Range) and HEAD
// read a file; PUT writes one, atomically replacing it unless append=1.
// PUT also takes mode (octal; default the old file's mode, else 0644) and
// parents=1 to create missing directories. Errors are written by errdefs.WriteHTTP.
func (s *Service) ContentHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			err = s.serveGet(w, r)
		case http.MethodPut:
			err = s.servePut(w, r)
		default:
			w.Header().Set("Allow", "GET, HEAD, PUT")
			errdefs.WriteHTTPStatus(w, http.StatusMethodNotAllowed, connect.CodeUnimplemented,
				fmt.Sprintf("method %s not allowed", r.Method))
			return
		}
		if err != nil {
			errdefs.WriteHTTP(w, err)
		}
	})
}

// serveGet streams the file. It returns an error only before it has written.
func (s *Service) serveGet(w http.ResponseWriter, r *http.Request) error {
	p, err := sandboxPath(r.URL.Query().Get("path"))
	if err != nil {
		return err
	}
	h, err := pathrs.OpenInRoot(s.root, p)
	if err != nil {
		return s.pathErr("read", p, err)
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return s.pathErr("read", p, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFDIR:
		return fmt.Errorf("read %q: is a directory (use ListDir): %w", p, errdefs.ErrFailedPrecondition)
	default:
		// Opening a FIFO would block, and a device may never end.
		return fmt.Errorf("read %q: not a regular file: %w", p, errdefs.ErrFailedPrecondition)
	}
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return s.pathErr("read", p, err)
	}
	defer f.Close()
	hdr := w.Header()
	hdr.Set("Content-Type", "application/octet-stream")
	hdr.Set("X-Hutch-Mode", fmt.Sprintf("%04o", st.Mode&0o7777))
	// ServeContent streams, and handles HEAD, Range and conditional requests.
	http.ServeContent(w, r, "", modTime(&st), f)
	return nil
}

// putOptions are PUT's query parameters.
type putOptions struct {
	path    string
	mode    uint32
	modeSet bool
	parents bool
	append  bool
}

func parsePut(r *http.Request) (putOptions, error) {
	q := r.URL.Query()
	p, err := sandboxPath(q.Get("path"))
	if err != nil {
		return putOptions{}, err
	}
	o := putOptions{path: p, mode: 0o644, parents: flag(q.Get("parents")), append: flag(q.Get("append"))}
	if m := q.Get("mode"); m != "" {
		v, err := strconv.ParseUint(m, 8, 32)
		if err != nil || v&^0o7777 != 0 {
			return putOptions{}, fmt.Errorf("mode %q is not an octal permission like 0644: %w", m, errdefs.ErrInvalidArgument)
		}
		o.mode, o.modeSet = uint32(v), true
	}
	return o, nil
}

func flag(v string) bool { return v == "1" || v == "true" }

func (s *Service) servePut(w http.ResponseWriter, r *http.Request) error {
	o, err := parsePut(r)
	if err != nil {
		return err
	}
	target, err := s.follow(o.path)
	if err != nil {
		return err
	}
	if target == "/" {
		return fmt.Errorf("write %q: is a directory: %w", o.path, errdefs.ErrFailedPrecondition)
	}
	e, err := s.lookup(target, o.parents)
	if err != nil {
		return parentError("write", o.path, err, " (set parents=1)")
	}
	defer e.close()
	body := &bodyReader{r: r.Body}
	var size int64
	if o.append {
		size, err = s.appendTo(e, body, o)
	} else {
		size, err = s.replace(e, body, o)
	}
	if body.err != nil {
		// The client went away or sent a broken body; nothing was replaced.
		return fmt.Errorf("write %q: read request body: %w: %w", o.path, body.err, errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return fmt.Errorf("write %q: %w", o.path, s.sysErr(err))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(PutResult{Path: o.path, Size: size})
	return nil
}

// bodyReader remembers a read error so it is not blamed on the disk.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.err = err
	}
	return n, err
}
