package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/client"
)

// s3Restore is a fork, on a daemon with an empty data dir, of a snapshot
// another daemon pushed to an S3-compatible server (versitygw on loopback).
type s3Restore struct {
	Skipped string // why it was not measured
	MB      float64
	Took    time.Duration
}

func measureS3Restore(ctx context.Context, cfg config, tmp string) (r s3Restore, err error) {
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		bin = filepath.Join(os.Getenv("HOME"), "go", "bin", "versitygw")
		if _, err := os.Stat(bin); err != nil {
			return s3Restore{Skipped: "versitygw not installed (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)"}, nil
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return r, err
	}
	const key, secret = "hutchbench", "hutchbench-secret"
	s3 := exec.CommandContext(ctx, bin, "--access", key, "--secret", secret, "--port", addr, "posix", filepath.Join(tmp, "s3"))
	if err := os.MkdirAll(filepath.Join(tmp, "s3"), 0o700); err != nil {
		return r, err
	}
	if err := s3.Start(); err != nil {
		return r, err
	}
	defer func() { _ = s3.Process.Kill(); _ = s3.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("versitygw did not listen on %s", addr)
		}
	}
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "HUTCH_S3_INSECURE": "1"} {
		os.Setenv(k, v)
	}
	loc := "s3://" + addr + "/bench"
	var snapID string
	var size int64
	for i, data := range []string{"s3-a", "s3-b"} {
		d, err := startDaemon(ctx, cfg.binDir, filepath.Join(tmp, data), cfg.cacheDir, filepath.Join(tmp, data+".log"), "--warm", "0", "--blobs", loc)
		if err != nil {
			return r, err
		}
		if i == 0 {
			err = sh(ctx, d.client, "src", "head -c 100000000 /dev/urandom > /workspace/big")
			if err == nil {
				var snap *hutchv1.Snapshot
				if snap, err = d.client.Snapshot(ctx, "src", 0); err == nil {
					snapID, size = snap.Id, snap.Size
				}
			}
		} else {
			t0 := time.Now()
			if _, _, err = d.client.Fork(ctx, "", []string{"restored"}, client.ForkOptions{Snapshot: snapID}); err == nil {
				r.Took, r.MB = time.Since(t0), float64(size)/1e6
			}
		}
		_ = d.removeSandboxes(context.WithoutCancel(ctx))
		d.stop()
		if err != nil {
			return r, err
		}
	}
	return r, nil
}

func (r s3Restore) row() (string, string) {
	if r.Skipped != "" {
		return "not measured", r.Skipped
	}
	return fmt.Sprintf("%8.0f ms", float64(r.Took)/1e6), fmt.Sprintf("%.0f MB snapshot, %.0f MB/s, onto an empty data dir", r.MB, r.MB/r.Took.Seconds())
}
