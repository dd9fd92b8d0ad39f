package apiserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/client"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/image"
)

// fakeImages holds one image and pulls only "registry.test/app:v1",
// reporting progress as the store does (lines, the last without a newline).
type fakeImages struct{}

var _ Images = fakeImages{}

var defaultImage = &image.Image{Name: "default", Digest: "sha256:d1", Layers: []string{"sha256:l1"}, Size: 42, Source: "recipe:x", Created: time.Unix(1e9, 0)}

func (fakeImages) List() ([]*image.Image, error) { return []*image.Image{defaultImage}, nil }

func (fakeImages) Pull(_ context.Context, name, ref string, progress io.Writer, _ ...remote.Option) (*image.Image, error) {
	if ref != "registry.test/app:v1" {
		return nil, fmt.Errorf("pull %q: %w", ref, errdefs.ErrNotFound)
	}
	fmt.Fprint(progress, "resolving "+ref+"\nlayer 1/1 (0s)\n")
	fmt.Fprint(progress, "pulled")
	return &image.Image{Name: name, Digest: "sha256:a1", Source: "pull:" + ref}, nil
}

func (fakeImages) EnsureDefault(_ context.Context, progress io.Writer) (*image.Image, error) {
	return defaultImage, nil
}

// The image service through the SDK: listing, a pull's progress lines in
// order then its image, and error categories kept across the wire.
func TestImageService(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle(hutchv1connect.NewImageServiceHandler(&images{st: fakeImages{}}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, ctx := client.New(srv.URL), context.Background()

	t.Run("list", func(t *testing.T) {
		imgs, err := c.Images(ctx)
		if err != nil || len(imgs) != 1 || imgs[0].Name != "default" || imgs[0].Size != 42 || !imgs[0].CreatedAt.AsTime().Equal(defaultImage.Created) {
			t.Fatalf("Images = %v, %v", imgs, err)
		}
	})
	t.Run("pull", func(t *testing.T) {
		var progress bytes.Buffer
		img, err := c.PullImage(ctx, "registry.test/app:v1", "app-v1", &progress)
		if err != nil || img.Name != "app-v1" || img.Source != "pull:registry.test/app:v1" {
			t.Fatalf("PullImage = %v, %v", img, err)
		}
		if want := "resolving registry.test/app:v1\nlayer 1/1 (0s)\npulled\n"; progress.String() != want {
			t.Errorf("progress %q, want %q", progress.String(), want)
		}
	})
	t.Run("pull of a missing image", func(t *testing.T) {
		if _, err := c.PullImage(ctx, "registry.test/nope:v1", "nope", nil); !errors.Is(err, client.ErrNotFound) || !strings.Contains(err.Error(), "nope") {
			t.Fatalf("PullImage = %v, want not found", err)
		}
	})
	t.Run("build", func(t *testing.T) {
		if img, err := c.BuildDefaultImage(ctx, nil); err != nil || img.Digest != "sha256:d1" {
			t.Fatalf("BuildDefaultImage = %v, %v", img, err)
		}
	})
}
