package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/client"
	"github.com/hutch-sh/hutch/internal/blob/blobtest"
)

// A snapshot pushed to an S3 server by one daemon is forked by another on
// an empty data dir; with the server down, snapshots fail as unavailable
// and the sandbox runs on.
func TestSnapshotAcrossDaemonsViaS3(t *testing.T) {
	requireHost(t)
	addr, stopS3 := blobtest.S3Server(t)
	t.Setenv("AWS_ACCESS_KEY_ID", blobtest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", blobtest.SecretKey)
	t.Setenv("HUTCH_S3_INSECURE", "1")
	loc := "s3://" + addr + "/hutch-e2e/snaps"
	a := newDaemonArgs(t, "", "--blobs", loc)
	ctx := context.Background()
	a.run("src", "sh", "-c", "head -c 20000000 /dev/urandom > /workspace/big && echo kept > /workspace/f")
	snap, err := a.Client.Snapshot(ctx, "src", 0)
	if err != nil {
		t.Fatal(err)
	}
	b := newDaemonArgs(t, "", "--blobs", loc)
	t0 := time.Now()
	if _, _, err := b.Client.Fork(ctx, "", []string{"copy"}, client.ForkOptions{Snapshot: snap.Id}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	if got := b.run("copy", "cat", "/workspace/f"); got != "kept\n" {
		t.Fatalf("fork on another daemon: %q", got)
	}
	if a.run("src", "md5sum", "/workspace/big")[:32] != b.run("copy", "md5sum", "/workspace/big")[:32] {
		t.Error("the 20 MB file differs after the round trip through S3")
	}
	t.Logf("restore of %d MB from S3 on an empty data dir: %v (%.0f MB/s)", snap.Size>>20, took.Round(time.Millisecond), float64(snap.Size)/1e6/took.Seconds())
	if _, _, err := b.Client.Fork(ctx, "", []string{"none"}, client.ForkOptions{Snapshot: "sn-000000000000"}); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("fork of a snapshot in neither store: %v, want not found", err)
	}

	// Server down: the snapshot fails as unavailable; the sandbox runs on.
	stopS3()
	if _, err := a.Client.Snapshot(ctx, "src", 0); !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("snapshot with the S3 server down: %v, want unavailable", err)
	}
	if got := a.run("src", "cat", "/workspace/f"); got != "kept\n" {
		t.Errorf("sandbox after a failed push: %q", got)
	}
	if snaps, _ := a.Client.Snapshots(ctx, "src"); len(snaps) != 1 {
		t.Errorf("%d snapshots after a failed push, want only the first", len(snaps))
	}

}

func TestServeWithWrongS3Credentials(t *testing.T) {
	requireHost(t)
	addr, _ := blobtest.S3Server(t)
	d := &daemon{t: t}
	_, stderr, code := d.hutchEnv([]string{"AWS_ACCESS_KEY_ID=" + blobtest.AccessKey, "AWS_SECRET_ACCESS_KEY=wrong", "HUTCH_S3_INSECURE=1"}, "",
		"serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--cache", cacheDir, "--blobs", "s3://"+addr+"/bkt")
	if code == 0 || !strings.Contains(stderr, "refused the credentials") {
		t.Errorf("serve with wrong S3 credentials: %d %s", code, stderr)
	}
}
