package blob_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/internal/blob"
	"github.com/hutch-sh/hutch/internal/blob/blobtest"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// VersityGW is the S3-compatible server the suite runs against, installed
// with `go install` when it is not on PATH or in GOPATH/bin.
const versityGW = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

const accessKey, secretKey = "hutchtest", "hutchtest-secret-key"

// s3Server starts versitygw on a posix dir and returns its host:port.
func s3Server(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		gobin := filepath.Join(os.Getenv("HOME"), "go", "bin", "versitygw")
		if _, err := os.Stat(gobin); err != nil {
			t.Logf("installing %s", versityGW)
			if out, err := exec.Command("go", "install", versityGW).CombinedOutput(); err != nil {
				t.Fatalf("go install %s: %v\n%s", versityGW, err, out)
			}
		}
		bin = gobin
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--access", accessKey, "--secret", secretKey, "--port", addr, "posix", t.TempDir())
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not listen on %s:\n%s", addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var buckets atomic.Int64

func TestS3(t *testing.T) {
	addr := s3Server(t)
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, err := blob.OpenS3(context.Background(), blob.S3Config{
			Endpoint: addr, Bucket: fmt.Sprintf("hutch-%d", buckets.Add(1)), Prefix: "p",
			AccessKey: accessKey, SecretKey: secretKey, Insecure: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestS3Unavailable(t *testing.T) {
	addr := s3Server(t)
	ctx := context.Background()
	if _, err := blob.OpenS3(ctx, blob.S3Config{Endpoint: addr, Bucket: "b", AccessKey: accessKey, SecretKey: "wrong", Insecure: true}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("wrong secret: %v, want unavailable", err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := ln.Addr().String()
	ln.Close()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := blob.OpenS3(cctx, blob.S3Config{Endpoint: down, Bucket: "b", AccessKey: accessKey, SecretKey: secretKey, Insecure: true}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("server down: %v, want unavailable", err)
	}
}
