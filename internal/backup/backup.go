// Package backup archives a directory of a sandbox into a blob store (a
// sorted tar, zstd-compressed, with its sha256) and restores it into a
// directory of the same or another sandbox.
package backup

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/klauspost/compress/zstd"

	"github.com/hutch-sh/hutch/internal/blob"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/snapshot"
)

// Backup is the record of one backup.
type Backup struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Sandbox   string    `json:"sandbox"`
	Dir       string    `json:"dir"`
	Size      int64     `json:"size"`   // of the uncompressed tar
	Digest    string    `json:"digest"` // sha256 of the uncompressed tar
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// Options shape a backup.
type Options struct {
	Name      string
	TTL       time.Duration
	Excludes  []string // path.Match patterns of paths relative to the dir, or of base names
	GitIgnore bool     // also leave out what the dir's .gitignore names
}

// Store keeps backups in a blob store: backups/<id>.tar.zst, then
// backups/<id>.json, written last so a broken upload leaves no backup.
type Store struct{ bs blob.Store }

// New returns a backup store on bs.
func New(bs blob.Store) *Store { return &Store{bs: bs} }

// systemDirs may be neither backed up nor restored into.
var systemDirs = []string{"/proc", "/sys", "/dev", "/run", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/boot", "/var/lib/dpkg"}

// ValidDir checks a directory inside a sandbox: absolute, clean, not the
// root and not in a system directory.
func ValidDir(dir string) error {
	if !path.IsAbs(dir) || path.Clean(dir) != dir {
		return fmt.Errorf("directory %q: want an absolute, clean path such as /workspace: %w", dir, errdefs.ErrInvalidArgument)
	}
	if dir == "/" {
		return fmt.Errorf("directory /: the whole disk is a snapshot's job (hutch snapshot): %w", errdefs.ErrInvalidArgument)
	}
	for _, s := range systemDirs {
		if dir == s || strings.HasPrefix(dir, s+"/") {
			return fmt.Errorf("directory %q: %s is a system directory: %w", dir, s, errdefs.ErrPermissionDenied)
		}
	}
	return nil
}

var idRe = regexp.MustCompile(`^bk-[0-9a-f]{12}$`)

func keys(id string) (data, rec string, err error) {
	if !idRe.MatchString(id) {
		return "", "", fmt.Errorf("backup id %q: want bk- and 12 hex digits: %w", id, errdefs.ErrInvalidArgument)
	}
	return "backups/" + id + ".tar.zst", "backups/" + id + ".json", nil
}

// inside resolves dir inside the sandbox root, symlinks included, so that
// nothing outside the root is ever read or written.
func inside(root, dir string) (string, error) {
	p, err := securejoin.SecureJoin(root, dir)
	if err != nil {
		return "", fmt.Errorf("directory %q: %w: %w", dir, err, errdefs.ErrInvalidArgument)
	}
	// A symlink on the way must not lead into a system dir either.
	if rel, err := filepath.Rel(root, p); err != nil || ValidDir("/"+rel) != nil {
		return "", fmt.Errorf("directory %q resolves to /%s, a system directory: %w", dir, rel, errdefs.ErrPermissionDenied)
	}
	return p, nil
}

// Create archives dir of the sandbox whose root is mounted at root.
func (s *Store) Create(ctx context.Context, root, sandbox, dir string, o Options) (Backup, error) {
	if err := ValidDir(dir); err != nil {
		return Backup{}, err
	}
	if o.TTL < 0 {
		return Backup{}, fmt.Errorf("ttl %s: must not be negative: %w", o.TTL, errdefs.ErrInvalidArgument)
	}
	for _, p := range o.Excludes {
		if _, err := path.Match(p, ""); err != nil {
			return Backup{}, fmt.Errorf("exclude %q: %w: %w", p, err, errdefs.ErrInvalidArgument)
		}
	}
	src, err := inside(root, dir)
	if err != nil {
		return Backup{}, err
	}
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		return Backup{}, fmt.Errorf("directory %q in sandbox %q: not a directory: %w", dir, sandbox, errdefs.ErrNotFound)
	}
	patterns := append([]string(nil), o.Excludes...)
	if o.GitIgnore {
		patterns = append(patterns, gitignore(filepath.Join(src, ".gitignore"))...)
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	b := Backup{ID: "bk-" + hex.EncodeToString(r[:]), Name: o.Name, Sandbox: sandbox, Dir: dir, CreatedAt: time.Now().UTC()}
	if o.TTL > 0 {
		b.ExpiresAt = b.CreatedAt.Add(o.TTL)
	}
	dataKey, recKey, _ := keys(b.ID)
	h := sha256.New()
	cw := &counter{}
	pr, pw := io.Pipe()
	go func() {
		zw, err := zstd.NewWriter(pw, zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err == nil {
			err = snapshot.WriteTree(ctx, io.MultiWriter(zw, h, cw), src, excluded(patterns))
			if cerr := zw.Close(); err == nil {
				err = cerr
			}
		}
		pw.CloseWithError(err)
	}()
	err = s.bs.Put(ctx, dataKey, pr)
	pr.CloseWithError(errors.New("upload ended"))
	if err != nil {
		return Backup{}, fmt.Errorf("backup of %s in %q: %w", dir, sandbox, err)
	}
	b.Size, b.Digest = cw.n, "sha256:"+hex.EncodeToString(h.Sum(nil))
	raw, _ := json.Marshal(b)
	if err := s.bs.Put(ctx, recKey, strings.NewReader(string(raw))); err != nil {
		_ = s.bs.Delete(context.WithoutCancel(ctx), dataKey)
		return Backup{}, fmt.Errorf("backup of %s in %q: %w", dir, sandbox, err)
	}
	return b, nil
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// excluded matches rel (and its base name) against patterns; a pattern
// ending in / matches directories only.
func excluded(patterns []string) func(rel string, isDir bool) bool {
	if len(patterns) == 0 {
		return nil
	}
	return func(rel string, isDir bool) bool {
		for _, p := range patterns {
			dirOnly := strings.HasSuffix(p, "/")
			p = strings.TrimSuffix(strings.TrimPrefix(p, "/"), "/")
			if dirOnly && !isDir {
				continue
			}
			if ok, _ := path.Match(p, rel); ok {
				return true
			}
			if ok, _ := path.Match(p, path.Base(rel)); ok && !strings.Contains(p, "/") {
				return true
			}
		}
		return false
	}
}

// gitignore reads the patterns of one .gitignore file (no negations).
func gitignore(file string) []string {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "!") {
			continue
		}
		out = append(out, l)
	}
	return out
}

// Get returns backup id's record.
func (s *Store) Get(ctx context.Context, id string) (Backup, error) {
	_, recKey, err := keys(id)
	if err != nil {
		return Backup{}, err
	}
	rc, err := s.bs.Get(ctx, recKey)
	if err != nil {
		return Backup{}, fmt.Errorf("backup %s: %w", id, err)
	}
	defer rc.Close()
	var b Backup
	if err := json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&b); err != nil {
		return Backup{}, fmt.Errorf("backup %s: bad record: %w: %w", id, err, errdefs.ErrFailedPrecondition)
	}
	return b, nil
}

// List returns every backup, oldest first, deleting expired ones.
func (s *Store) List(ctx context.Context) ([]Backup, error) {
	ks, err := s.bs.List(ctx, "backups/")
	if err != nil {
		return nil, err
	}
	out := []Backup{}
	now := time.Now()
	for _, k := range ks {
		id, ok := strings.CutSuffix(strings.TrimPrefix(k, "backups/"), ".json")
		if !ok || !idRe.MatchString(id) {
			continue
		}
		b, err := s.Get(ctx, id)
		if err != nil {
			continue // deleted meanwhile
		}
		if !b.ExpiresAt.IsZero() && now.After(b.ExpiresAt) {
			_ = s.Delete(ctx, id)
			continue
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// Delete removes backup id: its record first, so it is never half there.
func (s *Store) Delete(ctx context.Context, id string) error {
	dataKey, recKey, err := keys(id)
	if err != nil {
		return err
	}
	if _, err := s.Get(ctx, id); err != nil {
		return err
	}
	if err := s.bs.Delete(ctx, recKey); err != nil {
		return err
	}
	return s.bs.Delete(ctx, dataKey)
}
