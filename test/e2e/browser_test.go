package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/internal/testutil"
)

// The terminal page in real headless Chromium, driven by Playwright
// (web/terminal/test/browser.mjs): type, see output, resize, reload and see
// the replay. The screenshot lands in $HUTCH_ARTIFACTS (default
// test/e2e/artifacts).
func TestTerminalBrowser(t *testing.T) {
	t.Parallel()
	web, err := filepath.Abs("../../web/terminal")
	if err != nil {
		t.Fatal(err)
	}
	for _, need := range []string{filepath.Join(web, "node_modules/playwright-core"), filepath.Join(web, "dist/terminal.js"), "/usr/bin/chromium"} {
		if _, err := os.Stat(need); err != nil {
			testutil.Unavailable(t, "%s is missing: `make deps build` installs and builds it", need)
		}
	}
	artifacts := os.Getenv("HUTCH_ARTIFACTS")
	if artifacts == "" {
		artifacts, _ = filepath.Abs("artifacts")
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	d := newDaemon(t)
	d.run("browser", "true")
	shot := filepath.Join(artifacts, "terminal-browser.png")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "test/browser.mjs", d.url+"/terminal/browser", shot)
	cmd.Dir = web
	out, err := cmd.CombinedOutput()
	t.Logf("browser test:\n%s", out)
	if err != nil {
		t.Fatalf("browser test: %v (screenshot: %s)", err, shot)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("no screenshot: %v", err)
	}
}
