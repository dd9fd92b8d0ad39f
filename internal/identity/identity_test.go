package identity

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/hutch-sh/hutch/internal/egress"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

func TestIndex(t *testing.T) {
	a := netip.MustParseAddr("10.1.0.2")
	open := egress.Policy{}
	tests := []struct {
		name     string
		do       func(x *Index)
		wantName string // "" when addr is unknown
	}{
		{"unknown", func(*Index) {}, ""},
		{"set", func(x *Index) { x.Set(sandbox.Record{Name: "a", Addr: a}) }, "a"},
		{"no name is not indexed", func(x *Index) { x.Set(sandbox.Record{Addr: a}) }, ""},
		{"dropped", func(x *Index) {
			x.Set(sandbox.Record{Name: "a", Addr: a})
			x.Drop(sandbox.Record{Name: "a", Addr: a})
		}, ""},
		{"drop of a former owner keeps the new one", func(x *Index) {
			x.Set(sandbox.Record{Name: "a", Addr: a})
			x.Set(sandbox.Record{Name: "b", Addr: a, Policy: &open})
			x.Drop(sandbox.Record{Name: "a", Addr: a})
		}, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var x Index
			tt.do(&x)
			id, ok := x.Identify(a)
			if ok != (tt.wantName != "") || id.Name != tt.wantName {
				t.Fatalf("Identify = %+v %v, want %q", id, ok, tt.wantName)
			}
		})
	}
	t.Run("default policy when none is set", func(t *testing.T) {
		var x Index
		x.Set(sandbox.Record{Name: "a", Addr: a})
		id, _ := x.Identify(a)
		if !reflect.DeepEqual(id.Policy, egress.DefaultPolicy()) {
			t.Fatalf("policy %+v, want the default", id.Policy)
		}
	})
}
