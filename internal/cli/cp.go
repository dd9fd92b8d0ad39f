package cli

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hutch-sh/hutch/client"
)

// location is one side of a copy: a local path or NAME:/path in a sandbox.
type location struct {
	sandbox string // empty for local
	path    string // "-" for stdin/stdout when local
}

func parseLocation(s string) location {
	if i := strings.IndexByte(s, ':'); i > 0 && !strings.ContainsAny(s[:i], `/\.`) {
		return location{sandbox: s[:i], path: s[i+1:]}
	}
	return location{path: s}
}

func newCpCmd(e *env) *cobra.Command {
	var parents bool
	cmd := &cobra.Command{
		Use:   "cp SRC DST",
		Short: "Copy a file into or out of a sandbox (NAME:/path; - for stdin/stdout)",
		Example: "  hutch cp ./data.csv demo:/workspace/data.csv\n" +
			"  hutch cp demo:/workspace/out.png .\n" +
			"  tar c src | hutch cp - demo:/tmp/src.tar",
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			src, dst := parseLocation(a[0]), parseLocation(a[1])
			c := e.client()
			switch {
			case src.sandbox == "" && dst.sandbox != "":
				return upload(cmd, e, c, src.path, dst, parents)
			case src.sandbox != "" && dst.sandbox == "":
				return download(cmd, e, c, src, dst.path)
			default:
				return usageError{fmt.Errorf("cp: exactly one side must be NAME:/path, the other a local path or -")}
			}
		},
	}
	cmd.Flags().BoolVarP(&parents, "parents", "p", false, "create missing parent directories in the sandbox")
	return cmd
}

func upload(cmd *cobra.Command, e *env, c *client.Client, local string, dst location, parents bool) error {
	var r io.Reader = e.stdin
	var mode uint32
	if local != "-" {
		f, err := os.Open(local)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return fmt.Errorf("cp: %s is a directory; copy a tar archive instead (tar c DIR | hutch cp - NAME:/tmp/d.tar)", local)
		}
		mode = uint32(fi.Mode().Perm())
		r = f
		if strings.HasSuffix(dst.path, "/") {
			dst.path += filepath.Base(local)
		}
	}
	return c.WriteFile(cmd.Context(), dst.sandbox, dst.path, r, client.WriteOptions{Mode: mode, Parents: parents})
}

func download(cmd *cobra.Command, e *env, c *client.Client, src location, local string) error {
	body, _, err := c.ReadFile(cmd.Context(), src.sandbox, src.path)
	if err != nil {
		return err
	}
	defer body.Close()
	if local == "-" {
		_, err := io.Copy(e.stdout, body)
		return err
	}
	if fi, err := os.Stat(local); err == nil && fi.IsDir() {
		local = filepath.Join(local, path.Base(src.path))
	}
	// Write beside the target and rename, so a failed copy leaves no half file.
	tmp, err := os.CreateTemp(filepath.Dir(local), ".hutch-cp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_ = tmp.Chmod(0o644)
	if _, err := io.Copy(tmp, body); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), local)
}
