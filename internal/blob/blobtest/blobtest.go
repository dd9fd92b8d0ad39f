// Package blobtest is the conformance suite every blob.Store passes.
package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/hutch-sh/hutch/internal/blob"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// Run runs the suite against fresh, empty stores made by open.
func Run(t *testing.T, open func(t *testing.T) blob.Store) {
	ctx := context.Background()
	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t)
		for _, size := range []int{0, 1, 100 << 10, 40 << 20} {
			data := random(t, size)
			key := fmt.Sprintf("layers/sha256/r%d", size)
			if err := s.Put(ctx, key, bytes.NewReader(data)); err != nil {
				t.Fatalf("put %d bytes: %v", size, err)
			}
			if got := get(t, s, key); !bytes.Equal(got, data) {
				t.Fatalf("get %d bytes: got %d different bytes", size, len(got))
			}
		}
	})
	t.Run("Replace", func(t *testing.T) {
		s := open(t)
		put(t, s, "k", "one")
		put(t, s, "k", "two")
		if got := string(get(t, s, "k")); got != "two" {
			t.Errorf("after replace: %q", got)
		}
	})
	t.Run("Missing", func(t *testing.T) {
		s := open(t)
		if _, err := s.Get(ctx, "no/such/key"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Get(missing) = %v, want not found", err)
		}
		if err := s.Delete(ctx, "no/such/key"); err != nil {
			t.Errorf("Delete(missing) = %v, want nil", err)
		}
	})
	t.Run("DeleteAndList", func(t *testing.T) {
		s := open(t)
		for _, k := range []string{"b/2", "a/1", "b/1", "c"} {
			put(t, s, k, k)
		}
		keys, err := s.List(ctx, "b/")
		if err != nil || !slices.Equal(keys, []string{"b/1", "b/2"}) {
			t.Errorf("List(b/) = %v, %v", keys, err)
		}
		if err := s.Delete(ctx, "b/1"); err != nil {
			t.Fatal(err)
		}
		keys, _ = s.List(ctx, "")
		if !slices.Equal(keys, []string{"a/1", "b/2", "c"}) {
			t.Errorf("List() after delete = %v", keys)
		}
	})
	t.Run("BadKeys", func(t *testing.T) {
		s := open(t)
		for _, k := range []string{"", "/abs", "a/../b", "../x", ".hidden", "a//b", "a/", "sp ace"} {
			if err := s.Put(ctx, k, bytes.NewReader(nil)); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Put(%q) = %v, want invalid argument", k, err)
			}
			if _, err := s.Get(ctx, k); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Get(%q) = %v, want invalid argument", k, err)
			}
		}
	})
	t.Run("InterruptedPutLeavesNothing", func(t *testing.T) {
		s := open(t)
		put(t, s, "kept", "old")
		for _, k := range []string{"half", "kept"} {
			r := io.MultiReader(bytes.NewReader(random(t, 20<<20)), failing{})
			if err := s.Put(ctx, k, r); err == nil {
				t.Fatalf("Put(%s) of a failing reader succeeded", k)
			}
		}
		if _, err := s.Get(ctx, "half"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("after an interrupted put: Get = %v, want not found", err)
		}
		if got := string(get(t, s, "kept")); got != "old" {
			t.Errorf("an interrupted replace changed the object to %d bytes", len(got))
		}
		if keys, _ := s.List(ctx, ""); !slices.Equal(keys, []string{"kept"}) {
			t.Errorf("keys after interrupted puts: %v", keys)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		s := open(t)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				k := fmt.Sprintf("c/%d", i)
				if err := s.Put(ctx, k, bytes.NewReader([]byte(k))); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if keys, _ := s.List(ctx, "c/"); len(keys) != 8 {
			t.Errorf("%d keys after 8 concurrent puts", len(keys))
		}
	})
}

type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("source broke") }

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func put(t *testing.T, s blob.Store, key, v string) {
	t.Helper()
	if err := s.Put(context.Background(), key, bytes.NewReader([]byte(v))); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, s blob.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
