package blobtest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// VersityGW is the S3-compatible server tests run against, installed with
// `go install` when it is not on PATH or in GOPATH/bin.
const VersityGW = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// AccessKey and SecretKey are the credentials S3Server accepts.
const AccessKey, SecretKey = "hutchtest", "hutchtest-secret-key"

// S3Server starts versitygw on a temporary posix dir, stopped when t
// ends, and returns its host:port and a function that stops it sooner.
func S3Server(t *testing.T) (string, func()) {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		gobin := filepath.Join(os.Getenv("HOME"), "go", "bin", "versitygw")
		if _, err := os.Stat(gobin); err != nil {
			t.Logf("installing %s", VersityGW)
			if out, err := exec.Command("go", "install", VersityGW).CombinedOutput(); err != nil {
				t.Fatalf("go install %s: %v\n%s", VersityGW, err, out)
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
	cmd := exec.Command(bin, "--access", AccessKey, "--secret", SecretKey, "--port", addr, "posix", t.TempDir())
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) }
	t.Cleanup(stop)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not listen on %s:\n%s", addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
