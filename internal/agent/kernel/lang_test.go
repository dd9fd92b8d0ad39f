package kernel

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"testing"
)

// Tests of what one language has and the others do not; what every kernel
// must do is in the conformance suite (suite_test.go).

// plt.show() and a figure as the last expression come back as PNGs.
func TestPythonMatplotlibPNG(t *testing.T) {
	s := newKernels(t, Python, "matplotlib", "matplotlib_inline")
	d := pythonDialect
	for _, tc := range []struct {
		name, code string
		display    bool
	}{
		{"plt.show", "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()", true},
		{"figure shown at the end of the cell", "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.bar(['a', 'b'], [3, 5])", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok(t, s, d, "plots", tc.code)
			var pngs int
			for _, r := range c.results {
				b64, has := r.Data["image/png"]
				if !has {
					continue
				}
				pngs++
				if r.Display != tc.display {
					t.Errorf("PNG result display=%v, want %v", r.Display, tc.display)
				}
				b, err := base64.StdEncoding.DecodeString(b64)
				if err != nil {
					t.Fatalf("image/png is not base64: %v", err)
				}
				img, err := png.Decode(bytes.NewReader(b))
				if err != nil {
					t.Fatalf("not a PNG: %v", err)
				}
				if img.Bounds().Dx() < 100 || img.Bounds().Dy() < 100 {
					t.Fatalf("PNG is %v", img.Bounds())
				}
			}
			if pngs != 1 {
				t.Fatalf("%d PNG results, want 1 (results %v)", pngs, c.results)
			}
		})
	}
}

// TypeScript runs with its types stripped, keeping line numbers, with
// top-level await; its default context is not JavaScript's.
func TestTypeScriptTypes(t *testing.T) {
	s := newKernels(t, TypeScript)
	d := typeScriptDialect
	wantValue(t, ok(t, s, d, "", "interface P { v: number }\nfunction twice(p: P): number { return p.v * 2 }\nconst q: P = { v: 21 };\ntwice(q)"), "42")
	wantValue(t, ok(t, s, d, "", "const r: number = await Promise.resolve(twice({ v: 1 })); r"), "2")
	wantValue(t, ok(t, s, d, "", "type Pair<T> = [T, T]\nconst p: Pair<string> = ['a', 'b'] as const as any\np.length"), "2")
	c := run(t, s, d, "", "const s: string = undefined as any;\ns.length", 0, nil)
	if c.err == nil || c.err.Name != "TypeError" || c.err.Line != 2 {
		t.Fatalf("error %+v, want a TypeError on line 2", c.err)
	}
	wantValue(t, ok(t, s, javaScriptDialect, "", "typeof twice"), "'undefined'")
}
