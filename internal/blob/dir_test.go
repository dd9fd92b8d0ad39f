package blob_test

import (
	"testing"

	"github.com/hutch-sh/hutch/internal/blob"
	"github.com/hutch-sh/hutch/internal/blob/blobtest"
)

func TestDir(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, err := blob.OpenDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
