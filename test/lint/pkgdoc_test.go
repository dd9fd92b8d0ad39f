// Package lint holds repository-wide checks of the house style: one package
// doc per package, and the dependency arrows between daemon, agent and SDK.
package lint

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// root is the repository, seen from this package's directory.
const root = "../.."

// Every package says its one job in exactly one doc comment that names it
// ("Package x ..." or, for a main package, "Command x ..."). A package made
// only of tests (test/e2e) carries it in a test file.
func TestOnePackageDoc(t *testing.T) {
	type pkg struct{ src, tests []string }
	pkgs := map[string]*pkg{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (strings.HasPrefix(n, ".") || n == "bin" || n == "node_modules" || n == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, ".pb.go") || strings.HasSuffix(p, ".connect.go") {
			return nil
		}
		dir := filepath.Dir(p)
		if pkgs[dir] == nil {
			pkgs[dir] = &pkg{}
		}
		if strings.HasSuffix(p, "_test.go") {
			pkgs[dir].tests = append(pkgs[dir].tests, p)
		} else {
			pkgs[dir].src = append(pkgs[dir].src, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("found only %d packages under %s: the walk is broken", len(pkgs), root)
	}
	for dir, p := range pkgs {
		files := p.src
		if len(files) == 0 {
			files = p.tests
		}
		var docs []string
		for _, name := range files {
			f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if f.Doc == nil {
				continue
			}
			docs = append(docs, filepath.Base(name))
			text := f.Doc.Text()
			if want := "Package " + f.Name.Name + " "; f.Name.Name != "main" && !strings.HasPrefix(text, want) {
				t.Errorf("%s: the package doc should start %q: %q", name, want, firstLine(text))
			}
			if f.Name.Name == "main" && !strings.HasPrefix(text, "Command ") {
				t.Errorf("%s: the doc of a main package should start \"Command \": %q", name, firstLine(text))
			}
		}
		if len(docs) != 1 {
			t.Errorf("%s: %d package doc comments %v, want exactly 1", dir, len(docs), docs)
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
