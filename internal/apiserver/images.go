package apiserver

import (
	"bytes"
	"context"
	"io"
	"sync"

	"connectrpc.com/connect"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"google.golang.org/protobuf/types/known/timestamppb"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/image"
)

// Images is what the API needs of the image store.
type Images interface {
	List() ([]*image.Image, error)
	Pull(ctx context.Context, name, ref string, progress io.Writer, opts ...remote.Option) (*image.Image, error)
	EnsureDefault(ctx context.Context, progress io.Writer) (*image.Image, error)
}

var _ Images = (*image.Store)(nil)

// handleImages serves the ImageService when the daemon has an image store.
func (s *Server) handleImages(st Images, opts []connect.HandlerOption) {
	if st == nil {
		return
	}
	s.mux.Handle(hutchv1connect.NewImageServiceHandler(&images{st: st}, opts...))
}

type images struct{ st Images }

var _ hutchv1connect.ImageServiceHandler = (*images)(nil)

func (h *images) ListImages(context.Context, *connect.Request[hutchv1.ListImagesRequest]) (*connect.Response[hutchv1.ListImagesResponse], error) {
	imgs, err := h.st.List()
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	resp := &hutchv1.ListImagesResponse{}
	for _, img := range imgs {
		resp.Images = append(resp.Images, imageProto(img))
	}
	return connect.NewResponse(resp), nil
}

func (h *images) PullImage(ctx context.Context, req *connect.Request[hutchv1.PullImageRequest], stream *connect.ServerStream[hutchv1.ImageEvent]) error {
	return sendImage(stream, func(progress io.Writer) (*image.Image, error) {
		return h.st.Pull(ctx, req.Msg.Name, req.Msg.Ref, progress)
	})
}

func (h *images) BuildDefaultImage(ctx context.Context, _ *connect.Request[hutchv1.BuildDefaultImageRequest], stream *connect.ServerStream[hutchv1.ImageEvent]) error {
	return sendImage(stream, func(progress io.Writer) (*image.Image, error) {
		return h.st.EnsureDefault(ctx, progress)
	})
}

// sendImage streams what do reports as progress lines, then the image.
func sendImage(stream *connect.ServerStream[hutchv1.ImageEvent], do func(progress io.Writer) (*image.Image, error)) error {
	lw := &lineWriter{send: func(line string) error {
		return stream.Send(&hutchv1.ImageEvent{Event: &hutchv1.ImageEvent_Progress{Progress: line}})
	}}
	img, err := do(lw)
	if err != nil {
		return errdefs.ToConnect(err)
	}
	if err := lw.flush(); err != nil {
		return err
	}
	return stream.Send(&hutchv1.ImageEvent{Event: &hutchv1.ImageEvent_Image{Image: imageProto(img)}})
}

// lineWriter sends what is written to it one line at a time. A client that
// went away fails the next write, which the store treats like any other
// progress writer: it keeps working until ctx (the same client) ends it.
type lineWriter struct {
	send func(line string) error

	mu  sync.Mutex // guards buf: a reporter may write from its own goroutine
	buf []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(bytes.TrimRight(w.buf[:i], "\r"))
		w.buf = w.buf[i+1:]
		if err := w.send(line); err != nil {
			return 0, err
		}
	}
}

// flush sends a last line that had no newline.
func (w *lineWriter) flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) == 0 {
		return nil
	}
	line := string(w.buf)
	w.buf = nil
	return w.send(line)
}

func imageProto(img *image.Image) *hutchv1.Image {
	p := &hutchv1.Image{
		Name:       img.Name,
		Digest:     img.Digest,
		Layers:     img.Layers,
		Size:       img.Size,
		Source:     img.Source,
		Env:        img.Env,
		WorkingDir: img.WorkingDir,
	}
	if !img.Created.IsZero() {
		p.CreatedAt = timestamppb.New(img.Created)
	}
	return p
}
