package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"time"

	ggname "github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// Import stores the image at path under name. path is an OCI image layout
// directory, an OCI archive (that layout as a tar) or a `docker save`
// tarball; with several images in it, the one for this platform is taken.
func (s *Store) Import(ctx context.Context, name, path string) (*Image, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("import %q: %w", path, err)
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("import %q: %w", path, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("import %q: %w", path, err)
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()

	if fi.IsDir() {
		img, err := imageFromLayout(path)
		if err != nil {
			return nil, fmt.Errorf("import %q: %w", path, err)
		}
		return s.store(ctx, name, "oci-layout:"+path, img, nil)
	}
	kind, err := archiveKind(path)
	if err != nil {
		return nil, fmt.Errorf("import %q: %w", path, err)
	}
	if kind == "docker-archive" {
		img, err := tarball.ImageFromPath(path, nil)
		if err != nil {
			return nil, fmt.Errorf("import %q: %w: %w", path, err, errdefs.ErrInvalidArgument)
		}
		return s.store(ctx, name, "docker-archive:"+path, img, nil)
	}
	work, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "import-")
	if err != nil {
		return nil, fmt.Errorf("import %q: %w", path, err)
	}
	defer removeAll(work) //nolint:errcheck // best effort; Open retries stale dirs
	if err := extractLayout(ctx, path, work); err != nil {
		return nil, fmt.Errorf("import %q: %w", path, err)
	}
	img, err := imageFromLayout(work)
	if err != nil {
		return nil, fmt.Errorf("import %q: %w", path, err)
	}
	return s.store(ctx, name, "oci-archive:"+path, img, nil)
}

// Pull fetches ref from its registry and stores it under name, reporting
// its progress on progress (which may be nil). Registries on loopback are
// spoken to over plain http.
func (s *Store) Pull(ctx context.Context, name, ref string, progress io.Writer, opts ...remote.Option) (*Image, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	var nopts []ggname.Option
	if loopbackRef(ref) {
		nopts = append(nopts, ggname.Insecure)
	}
	r, err := ggname.ParseReference(ref, nopts...)
	if err != nil {
		return nil, fmt.Errorf("pull %q: %w: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rep := newReporter(progress)
	rep.Phase("resolving " + ref)
	opts = append([]remote.Option{
		remote.WithContext(ctx),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}),
	}, opts...)
	img, err := remote.Image(r, opts...)
	if err != nil {
		rep.Close("pull of " + ref + " failed")
		return nil, fmt.Errorf("pull %q: %w: %w", ref, err, registryCategory(err))
	}
	rec, err := s.store(ctx, name, "pull:"+ref, img, rep)
	if err != nil {
		rep.Close("pull of " + ref + " failed")
		return nil, err
	}
	rep.Close(fmt.Sprintf("pulled %s as %s (%s)", ref, name, humanBytes(rec.Size)))
	return rec, nil
}

// registryCategory sorts a registry's answer into our error categories.
func registryCategory(err error) error {
	var te *transport.Error
	if !errors.As(err, &te) {
		return errdefs.ErrUnavailable
	}
	switch te.StatusCode {
	case http.StatusNotFound:
		return errdefs.ErrNotFound
	case http.StatusUnauthorized:
		return errdefs.ErrUnauthenticated
	case http.StatusForbidden:
		return errdefs.ErrPermissionDenied
	case http.StatusTooManyRequests:
		return errdefs.ErrResourceExhausted
	}
	return errdefs.ErrUnavailable
}

func loopbackRef(ref string) bool {
	host := ref
	for i, c := range ref {
		if c == '/' {
			host = ref[:i]
			break
		}
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// store unpacks img's layers (reusing those present) and records it,
// showing each layer on rep when there is one.
func (s *Store) store(ctx context.Context, imgName, source string, img v1.Image, rep *reporter) (*Image, error) {
	start := time.Now()
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %q: config: %w: %w", imgName, err, errdefs.ErrInvalidArgument)
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("image %q: digest: %w: %w", imgName, err, errdefs.ErrInvalidArgument)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("image %q: layers: %w: %w", imgName, err, errdefs.ErrInvalidArgument)
	}
	if len(cfg.RootFS.DiffIDs) != len(layers) {
		return nil, fmt.Errorf("image %q: config lists %d layers, manifest %d: %w", imgName, len(cfg.RootFS.DiffIDs), len(layers), errdefs.ErrInvalidArgument)
	}
	rec := &Image{
		Name:   imgName,
		Digest: digest.String(),
		Source: source,
		Env:    cfg.Config.Env,
		// An image without a working dir starts where sandboxes start anyway.
		WorkingDir: cfg.Config.WorkingDir,
	}
	for i, l := range layers {
		// The config's diffID is what the manifest digest vouches for; the
		// unpacked stream is checked against it.
		diffID := cfg.RootFS.DiffIDs[i].String()
		var onBytes func(int64)
		if rep != nil {
			rep.Phase(fmt.Sprintf("layer %d/%d %.19s", i+1, len(layers), diffID))
			var shown time.Time
			onBytes = func(n int64) {
				if time.Since(shown) >= 250*time.Millisecond {
					shown = time.Now()
					rep.Detail(humanBytes(n))
				}
			}
		}
		size, err := s.ensureLayer(ctx, diffID, l.Uncompressed, onBytes)
		if err != nil {
			return nil, fmt.Errorf("image %q: %w", imgName, err)
		}
		rec.Layers = append(rec.Layers, diffID)
		rec.Size += size
	}
	rec.Created = time.Now().UTC()
	if err := s.put(rec); err != nil {
		return nil, err
	}
	s.log.Info("stored image", "image", imgName, "source", source, "digest", rec.Digest, "layers", len(rec.Layers), "took", time.Since(start).Round(time.Millisecond))
	return rec, nil
}

// imageFromLayout picks the image for this platform from an OCI layout,
// descending into nested indexes.
func imageFromLayout(dir string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("not an OCI image layout: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	img, err := pickImage(idx, 0)
	if err != nil {
		return nil, err
	}
	if img == nil {
		return nil, fmt.Errorf("no linux/%s image in the layout: %w", runtime.GOARCH, errdefs.ErrInvalidArgument)
	}
	return img, nil
}

func pickImage(idx v1.ImageIndex, depth int) (v1.Image, error) {
	if depth > 4 {
		return nil, fmt.Errorf("image indexes nested too deep: %w", errdefs.ErrInvalidArgument)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("index: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	want := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	for _, d := range im.Manifests {
		if d.Platform != nil && !d.Platform.Satisfies(want) {
			continue
		}
		switch {
		case d.MediaType.IsImage():
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("image %s: %w: %w", d.Digest, err, errdefs.ErrInvalidArgument)
			}
			return img, nil
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("index %s: %w: %w", d.Digest, err, errdefs.ErrInvalidArgument)
			}
			img, err := pickImage(child, depth+1)
			if img != nil || err != nil {
				return img, err
			}
		}
	}
	return nil, nil
}

// archiveKind tells a docker-save tarball from an OCI archive.
func archiveKind(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	oci := false
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("not a tar archive: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		switch rel, _ := cleanEntryPath(hdr.Name); rel {
		case "manifest.json":
			// docker save (since 25) writes both; its manifest.json is simpler to trust.
			return "docker-archive", nil
		case "index.json":
			oci = true
		}
	}
	if !oci {
		return "", fmt.Errorf("neither an OCI archive nor a docker save tarball: %w", errdefs.ErrInvalidArgument)
	}
	return "oci-archive", nil
}

var layoutEntryRe = regexp.MustCompile(`^(oci-layout|index\.json|blobs/[a-z0-9]+/[a-f0-9]{32,128})$`)

// extractLayout unpacks the files of an OCI archive that make up a layout;
// names are matched whole, so nothing lands outside dir.
func extractLayout(ctx context.Context, path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		rel, err := cleanEntryPath(hdr.Name)
		if err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg || !layoutEntryRe.MatchString(rel) {
			continue
		}
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
		}
	}
}
