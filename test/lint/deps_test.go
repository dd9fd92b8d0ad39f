package lint

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/hutch-sh/hutch/"

// listed is what `go list -json` says of one package.
type listed struct {
	ImportPath string
	Imports    []string
	Module     *struct{ Path string }
}

// deps returns every package of this module that pkg links, pkg included,
// each with the packages of this module it imports directly.
func deps(t *testing.T, pkg string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports,Module", pkg)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr.Bytes())
	}
	ours := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		if p.Module == nil || p.Module.Path+"/" != module {
			continue
		}
		var imports []string
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module) {
				imports = append(imports, imp)
			}
		}
		ours[p.ImportPath] = imports
	}
	if len(ours) == 0 {
		t.Fatalf("go list -deps %s: no package of %s: the listing is broken", pkg, module)
	}
	return ours
}

// under reports whether pkg is dir (relative to the module) or below it.
func under(pkg string, dirs ...string) bool {
	rel := strings.TrimPrefix(pkg, module)
	for _, d := range dirs {
		if rel == d || strings.HasPrefix(rel, d+"/") {
			return true
		}
	}
	return false
}

// The arrows between the daemon, the agent and the SDK point one way; this
// keeps them so (as Tailscale's tstest/deptest does), instead of leaving it
// to reviewers.
func TestDependencies(t *testing.T) {
	for _, c := range []struct {
		pkg     string
		rule    string
		allowed func(dep string) bool
	}{
		{
			pkg:     "./cmd/hutch",
			rule:    "the daemon and CLI never link the in-sandbox agent (internal/agent/...); they speak to it through internal/agentapi",
			allowed: func(dep string) bool { return !under(dep, "internal/agent") },
		},
		{
			pkg:  "./cmd/hutch-agent",
			rule: "the agent links only itself, the daemon↔agent protocol, errdefs and the API types",
			allowed: func(dep string) bool {
				return under(dep, "cmd/hutch-agent", "internal/agent", "internal/agentapi", "internal/errdefs", "api")
			},
		},
		{
			pkg:  "./client",
			rule: "the public SDK imports only the API and the wire types",
			allowed: func(dep string) bool {
				return under(dep, "client", "api", "internal/errdefs", "internal/agentapi/termwire")
			},
		},
	} {
		t.Run(strings.TrimPrefix(c.pkg, "./"), func(t *testing.T) {
			ds := deps(t, c.pkg)
			var bad []string
			for dep := range ds {
				if !c.allowed(dep) {
					bad = append(bad, dep)
				}
			}
			slices.Sort(bad)
			for _, dep := range bad {
				t.Errorf("%s links %s (imported by %s): %s", c.pkg, strings.TrimPrefix(dep, module), importers(ds, dep), c.rule)
			}
		})
	}
}

// importers names the packages of ds that import dep directly.
func importers(ds map[string][]string, dep string) string {
	var by []string
	for p, imports := range ds {
		if slices.Contains(imports, dep) {
			by = append(by, strings.TrimPrefix(p, module))
		}
	}
	slices.Sort(by)
	return strings.Join(by, ", ")
}
