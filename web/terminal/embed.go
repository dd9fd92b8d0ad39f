// Package terminal serves the browser terminal page, /terminal/NAME: xterm.js
// and hutch's SandboxAddon (src/), bundled by `make build` into dist/ and
// embedded in the binary.
package terminal

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed index.html all:dist
var files embed.FS

// AssetsPath is where the page's script and styles are served.
const AssetsPath = "/terminal/_assets/"

// Built reports whether the bundle was built into this binary.
func Built() bool {
	_, err := fs.Stat(files, "dist/terminal.js")
	return err == nil
}

// Page serves the page for any sandbox name; the script reads the name
// from the URL.
func Page() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Built() {
			http.Error(w, "hutch: the terminal page was not built into this binary: build with `make build` (needs npm)", http.StatusNotFound)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, files, "index.html")
	})
}

// Assets serves the bundled script and styles under AssetsPath.
func Assets() http.Handler {
	dist, _ := fs.Sub(files, "dist")
	return http.StripPrefix(AssetsPath, http.FileServerFS(dist))
}
