package blob_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/internal/blob"
	"github.com/hutch-sh/hutch/internal/blob/blobtest"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

var buckets atomic.Int64

func TestS3(t *testing.T) {
	addr, _ := blobtest.S3Server(t)
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, err := blob.OpenS3(context.Background(), blob.S3Config{
			Endpoint: addr, Bucket: fmt.Sprintf("hutch-%d", buckets.Add(1)), Prefix: "p",
			AccessKey: blobtest.AccessKey, SecretKey: blobtest.SecretKey, Insecure: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestS3Unavailable(t *testing.T) {
	addr, _ := blobtest.S3Server(t)
	ctx := context.Background()
	if _, err := blob.OpenS3(ctx, blob.S3Config{Endpoint: addr, Bucket: "b", AccessKey: blobtest.AccessKey, SecretKey: "wrong", Insecure: true}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("wrong secret: %v, want unavailable", err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := ln.Addr().String()
	ln.Close()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := blob.OpenS3(cctx, blob.S3Config{Endpoint: down, Bucket: "b", AccessKey: blobtest.AccessKey, SecretKey: blobtest.SecretKey, Insecure: true}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("server down: %v, want unavailable", err)
	}
}
