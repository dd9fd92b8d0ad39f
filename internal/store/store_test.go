package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

type rec struct {
	Name  string    `json:"name"`
	N     int       `json:"n"`
	At    time.Time `json:"at"`
	Lower []string  `json:"lower"`
}

func open(t *testing.T, path string) *Bolt {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPutGetDeleteEach(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "hutch.db"))
	defer s.Close()
	at := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	tests := []struct {
		key string
		v   rec
	}{
		{"b", rec{Name: "b", N: 2, At: at, Lower: []string{"/l1", "/l2"}}},
		{"a", rec{Name: "a", N: 1}},
		{"c-long-name-0123456789", rec{Name: "c", N: 3}},
	}
	for _, tt := range tests {
		t.Run("put "+tt.key, func(t *testing.T) {
			if err := s.Put(ctx, tt.key, tt.v); err != nil {
				t.Fatal(err)
			}
			var got rec
			if err := s.Get(ctx, tt.key, &got); err != nil {
				t.Fatal(err)
			}
			if got.Name != tt.v.Name || got.N != tt.v.N || !got.At.Equal(tt.v.At) || len(got.Lower) != len(tt.v.Lower) {
				t.Errorf("Get = %+v, want %+v", got, tt.v)
			}
		})
	}
	t.Run("overwrite", func(t *testing.T) {
		if err := s.Put(ctx, "a", rec{Name: "a", N: 10}); err != nil {
			t.Fatal(err)
		}
		var got rec
		if err := s.Get(ctx, "a", &got); err != nil || got.N != 10 {
			t.Errorf("Get after overwrite = %+v %v", got, err)
		}
	})
	t.Run("each in key order", func(t *testing.T) {
		var keys []string
		if err := s.Each(ctx, func(k string, raw []byte) error {
			keys = append(keys, k)
			if len(raw) == 0 || raw[0] != '{' {
				t.Errorf("raw value of %s = %q, want JSON", k, raw)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if want := "a,b,c-long-name-0123456789"; join(keys) != want {
			t.Errorf("keys = %v, want %s", keys, want)
		}
	})
	t.Run("each stops on error", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := s.Each(ctx, func(string, []byte) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("Each = %v after %d calls, want the callback's error after 1", err, n)
		}
	})
	t.Run("delete", func(t *testing.T) {
		if err := s.Delete(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		var got rec
		if err := s.Get(ctx, "b", &got); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Get after delete = %v, want not found", err)
		}
		if err := s.Delete(ctx, "b"); err != nil {
			t.Errorf("Delete of a missing key = %v, want nil", err)
		}
	})
	t.Run("get missing", func(t *testing.T) {
		var got rec
		if err := s.Get(ctx, "nope", &got); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Get = %v, want not found", err)
		}
	})
	t.Run("unencodable", func(t *testing.T) {
		if err := s.Put(ctx, "bad", func() {}); err == nil {
			t.Error("Put of a func succeeded")
		}
		var got rec
		if err := s.Get(ctx, "bad", &got); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("a failed Put left a record: %v", err)
		}
	})
}

func join(s []string) string {
	out := ""
	for i, k := range s {
		if i > 0 {
			out += ","
		}
		out += k
	}
	return out
}

func TestSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hutch.db")
	s := open(t, path)
	for i := range 50 {
		if err := s.Put(ctx, "k"+strconv.Itoa(i), rec{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "k7"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	defer s.Close()
	n := 0
	if err := s.Each(ctx, func(string, []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 49 {
		t.Errorf("%d records after reopen, want 49", n)
	}
	var got rec
	if err := s.Get(ctx, "k42", &got); err != nil || got.N != 42 {
		t.Errorf("Get k42 after reopen = %+v %v", got, err)
	}
	if err := s.Get(ctx, "k7", &got); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("deleted key back after reopen: %v", err)
	}
}

func TestOpenHeldByAnother(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hutch.db")
	s := open(t, path)
	defer s.Close()
	start := time.Now()
	s2, err := Open(path)
	if err == nil {
		s2.Close()
		t.Fatal("a second Open of a held store succeeded")
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("second Open took %v", time.Since(start))
	}
}

func TestOpenBadPath(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "no", "such", "dir", "hutch.db")); err == nil {
		t.Error("Open in a missing dir succeeded")
	}
	f := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(f, []byte("not a bolt file, definitely not"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(f); err == nil {
		s.Close()
		t.Error("Open of a corrupt file succeeded")
	}
}
