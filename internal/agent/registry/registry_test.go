package registry

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// entry stands for a process, session or terminal.
type entry struct {
	id      string
	started time.Time
	ended   time.Time // zero while running
}

func make1(id string) (*entry, error) { return &entry{id: id, started: time.Now()}, nil }

func TestAdd(t *testing.T) {
	failing := func(string) (*entry, error) { return nil, fmt.Errorf("spawn: %w", errdefs.ErrResourceExhausted) }
	tests := []struct {
		name    string
		opts    Options[*entry]
		before  []string // ids added first
		id      string
		create  func(string) (*entry, error)
		wantErr error
	}{
		{name: "given id", id: "a"},
		{name: "generated id", id: ""},
		{name: "taken id", before: []string{"a"}, id: "a", wantErr: errdefs.ErrAlreadyExists},
		{name: "taken but reusable", opts: Options[*entry]{Reusable: func(*entry) bool { return true }}, before: []string{"a"}, id: "a"},
		{name: "bad id", id: "a/b", wantErr: errdefs.ErrInvalidArgument},
		{name: "too long", id: strings.Repeat("x", 65), wantErr: errdefs.ErrInvalidArgument},
		{name: "create fails", id: "a", create: failing, wantErr: errdefs.ErrResourceExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New("thing", tt.opts)
			for _, id := range tt.before {
				if _, err := r.Add(id, make1); err != nil {
					t.Fatal(err)
				}
			}
			create := tt.create
			if create == nil {
				create = make1
			}
			e, err := r.Add(tt.id, create)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Add(%q) = %v, want %v", tt.id, err, tt.wantErr)
			}
			if err != nil {
				if tt.wantErr != errdefs.ErrAlreadyExists && len(r.List()) != len(tt.before) {
					t.Fatalf("a failed Add left %d entries", len(r.List()))
				}
				return
			}
			if CheckID("thing", e.id) != nil || (tt.id != "" && e.id != tt.id) {
				t.Fatalf("added under %q", e.id)
			}
			if got, err := r.Get(e.id); err != nil || got != e {
				t.Fatalf("Get(%q) = %v, %v", e.id, got, err)
			}
		})
	}
}

func TestGetOrCreate(t *testing.T) {
	r := New("session", Options[*entry]{})
	var wg sync.WaitGroup
	got := make([]*entry, 16)
	created := make([]bool, 16)
	for i := range got {
		wg.Go(func() {
			var err error
			if got[i], created[i], err = r.GetOrCreate("s1", make1); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	n := 0
	for i := range got {
		if got[i] != got[0] {
			t.Fatal("concurrent GetOrCreate made two entries under one id")
		}
		if created[i] {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d callers say they created it, want 1", n)
	}
	if _, _, err := r.GetOrCreate("a b", make1); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("bad id: %v", err)
	}
	if _, err := r.Get("nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Get of a missing id: %v", err)
	}
}

func TestRemoveOnlyTheSameEntry(t *testing.T) {
	r := New("terminal", Options[*entry]{})
	old, _ := r.Add("t", make1)
	if !r.Remove("t", old) || r.Remove("t", old) {
		t.Fatal("Remove of the entry: want true once")
	}
	newer, _ := r.Add("t", make1)
	if r.Remove("t", old) {
		t.Fatal("Remove of a stale entry removed the newer one under its id")
	}
	if got, _ := r.Get("t"); got != newer {
		t.Fatal("the newer entry is gone")
	}
}

func TestSortedAndPrune(t *testing.T) {
	t0 := time.Now()
	r := New("process", Options[*entry]{
		Ended:    func(e *entry) (time.Time, bool) { return e.ended, !e.ended.IsZero() },
		MaxEnded: 2,
	})
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for i, e := range []*entry{
		{id: "d", started: at(3)},
		{id: "b", started: at(1), ended: at(10)},
		{id: "a", started: at(1), ended: at(12)},
		{id: "c", started: at(2), ended: at(11)},
	} {
		if _, err := r.Add(e.id, func(string) (*entry, error) { return e, nil }); err != nil {
			t.Fatal(i, err)
		}
	}
	ids := func() string {
		var s []string
		for _, e := range Sorted(r, func(e *entry) time.Time { return e.started }) {
			s = append(s, e.id)
		}
		return strings.Join(s, ",")
	}
	if got := ids(); got != "a,b,c,d" {
		t.Fatalf("Sorted = %s, want by start then id", got)
	}
	r.Prune()
	if got := ids(); got != "a,c,d" {
		t.Fatalf("after Prune: %s, want the oldest ended (b) gone", got)
	}
}

func TestClose(t *testing.T) {
	r := New("session", Options[*entry]{})
	a, _ := r.Add("a", make1)
	if all := r.Close(); len(all) != 1 || all[0] != a {
		t.Fatalf("Close returned %v", all)
	}
	if len(r.List()) != 0 {
		t.Fatal("Close kept entries")
	}
	if _, err := r.Add("", make1); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("Add after Close: %v", err)
	}
	if _, _, err := r.GetOrCreate("a", make1); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("GetOrCreate after Close: %v", err)
	}
}

func TestMax(t *testing.T) {
	r := New("code context", Options[*entry]{Max: 2, Reusable: func(e *entry) bool { return !e.ended.IsZero() }})
	a, _ := r.Add("a", make1)
	if _, err := r.Add("b", make1); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add("c", make1); !errors.Is(err, errdefs.ErrResourceExhausted) {
		t.Fatalf("third of at most 2: %v", err)
	}
	if _, _, err := r.GetOrCreate("c", make1); !errors.Is(err, errdefs.ErrResourceExhausted) {
		t.Fatalf("GetOrCreate of a third: %v", err)
	}
	if _, created, err := r.GetOrCreate("a", make1); err != nil || created {
		t.Fatalf("GetOrCreate of an existing one when full: %v %v", created, err)
	}
	// Taking an ended entry's id does not add one.
	a.ended = time.Now()
	if _, err := r.Add("a", make1); err != nil {
		t.Fatalf("reuse when full: %v", err)
	}
	r.Remove("b", mustGet(t, r, "b"))
	if _, err := r.Add("c", make1); err != nil {
		t.Fatalf("after a removal: %v", err)
	}
}

func mustGet(t *testing.T, r *Registry[*entry], id string) *entry {
	t.Helper()
	e, err := r.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
