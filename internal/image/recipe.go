package image

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

//go:embed default.recipe
var defaultRecipe []byte

// DefaultName is the image sandboxes get unless told otherwise.
const DefaultName = "default"

// Recipe describes a root filesystem built from Debian packages with
// mmdebstrap.
type Recipe struct {
	Suite    string   // e.g. bookworm
	Mirror   string   // e.g. http://deb.debian.org/debian
	Variant  string   // mmdebstrap --variant
	Packages []string // mmdebstrap --include
	// Npm are npm packages (NAME@VERSION, pinned) installed globally under
	// /usr/local by the image's own npm once the Debian packages are in.
	Npm []string
	Env []string // K=V, recorded as the image's environment
}

var (
	variants = []string{"extract", "custom", "essential", "apt", "required", "minbase", "buildd", "important", "debootstrap", "standard"}
	pkgRe    = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(:[a-z0-9]+)?$`)
	suiteRe  = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*$`)
	envKeyRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	npmRe    = regexp.MustCompile(`^(@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*@[0-9]+\.[0-9]+\.[0-9]+[0-9A-Za-z.+-]*$`)
)

// DefaultRecipe returns the embedded recipe of the default image.
func DefaultRecipe() (Recipe, error) { return ParseRecipe(defaultRecipe) }

// ParseRecipe parses a recipe file: one directive per line ("suite S",
// "mirror URL", "variant V", "packages P..." (repeatable), "npm
// NAME@VERSION..." (repeatable), "env K=V" (repeatable)); "#" starts a
// comment.
func ParseRecipe(b []byte) (Recipe, error) {
	var r Recipe
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		key, args := fields[0], fields[1:]
		bad := func(msg string) error {
			return fmt.Errorf("recipe line %d: %s: %w", n, msg, errdefs.ErrInvalidArgument)
		}
		switch key {
		case "suite", "mirror", "variant":
			if len(args) != 1 {
				return Recipe{}, bad(key + " takes one value")
			}
			dst := map[string]*string{"suite": &r.Suite, "mirror": &r.Mirror, "variant": &r.Variant}[key]
			if *dst != "" {
				return Recipe{}, bad(key + " given twice")
			}
			*dst = args[0]
		case "packages":
			if len(args) == 0 {
				return Recipe{}, bad("packages needs at least one name")
			}
			r.Packages = append(r.Packages, args...)
		case "npm":
			if len(args) == 0 {
				return Recipe{}, bad("npm needs at least one NAME@VERSION")
			}
			r.Npm = append(r.Npm, args...)
		case "env":
			// The value may contain spaces: take the rest of the line.
			kv := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "env"))
			if len(args) == 0 {
				return Recipe{}, bad("env needs K=V")
			}
			r.Env = append(r.Env, kv)
		default:
			return Recipe{}, bad(fmt.Sprintf("unknown directive %q", key))
		}
	}
	if err := sc.Err(); err != nil {
		return Recipe{}, fmt.Errorf("recipe: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	if err := r.Validate(); err != nil {
		return Recipe{}, err
	}
	return r, nil
}

// Validate checks that the recipe is complete and that nothing in it can
// be mistaken for an mmdebstrap option.
func (r Recipe) Validate() error {
	bad := func(msg string, a ...any) error {
		return fmt.Errorf("recipe: %s: %w", fmt.Sprintf(msg, a...), errdefs.ErrInvalidArgument)
	}
	if !suiteRe.MatchString(r.Suite) {
		return bad("suite %q: want a Debian suite name such as bookworm", r.Suite)
	}
	u, err := url.Parse(r.Mirror)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("mirror %q: want an http(s) URL", r.Mirror)
	}
	if !slices.Contains(variants, r.Variant) {
		return bad("variant %q: want one of %s", r.Variant, strings.Join(variants, ", "))
	}
	for _, p := range r.Packages {
		if !pkgRe.MatchString(p) {
			return bad("package %q: not a Debian package name", p)
		}
	}
	for _, p := range r.Npm {
		if !npmRe.MatchString(p) {
			return bad("npm package %q: want NAME@VERSION with an exact version", p)
		}
	}
	if len(r.Npm) > 0 && !slices.Contains(r.Packages, "npm") {
		return bad("npm packages need the Debian package npm in packages")
	}
	for _, e := range r.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || !envKeyRe.MatchString(k) {
			return bad("env %q: want K=V", e)
		}
	}
	return nil
}

// Canonical is the recipe in file form with comments and line breaks
// normalised; its hash identifies what a build produces.
func (r Recipe) Canonical() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "suite %s\nmirror %s\nvariant %s\n", r.Suite, r.Mirror, r.Variant)
	if len(r.Packages) > 0 {
		fmt.Fprintf(&b, "packages %s\n", strings.Join(r.Packages, " "))
	}
	if len(r.Npm) > 0 {
		fmt.Fprintf(&b, "npm %s\n", strings.Join(r.Npm, " "))
	}
	for _, e := range r.Env {
		fmt.Fprintf(&b, "env %s\n", e)
	}
	return b.Bytes()
}

// Source is what an image built from r records as its Source.
func (r Recipe) Source() string {
	sum := sha256.Sum256(r.Canonical())
	return "recipe:" + hex.EncodeToString(sum[:])
}
