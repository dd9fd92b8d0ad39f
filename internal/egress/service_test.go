package egress

import (
	"testing"
	"time"
)

// A sandbox's log starts at its creation: what an earlier sandbox of the
// same name left is not shown, and the limit counts only its own entries.
func TestServiceLogSince(t *testing.T) {
	created := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s := &Service{Proxy: &Proxy{}}
	for i, at := range []time.Duration{-2 * time.Minute, -time.Second, 0, time.Second, 2 * time.Second} {
		s.Proxy.logs.add(Entry{Sandbox: "sb", Time: created.Add(at), Port: i})
	}
	s.Proxy.logs.add(Entry{Sandbox: "other", Time: created.Add(time.Hour)})
	tests := []struct {
		name    string
		sandbox string
		since   time.Time
		n       int
		want    []int // ports of the entries, in order
	}{
		{"all of its own", "sb", created, 0, []int{2, 3, 4}},
		{"negative limit is all", "sb", created, -1, []int{2, 3, 4}},
		{"limit keeps the latest", "sb", created, 2, []int{3, 4}},
		{"limit over its own count", "sb", created, 4, []int{2, 3, 4}},
		{"an older creation sees more", "sb", created.Add(-time.Hour), 0, []int{0, 1, 2, 3, 4}},
		{"created after every entry", "sb", created.Add(time.Hour), 0, nil},
		{"no log", "none", time.Time{}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.Log(tt.sandbox, tt.since, tt.n)
			if len(got) != len(tt.want) {
				t.Fatalf("Log = %+v, want ports %v", got, tt.want)
			}
			for i, e := range got {
				if e.Port != tt.want[i] || e.Sandbox != tt.sandbox {
					t.Errorf("entry %d = %+v, want port %d of %s", i, e, tt.want[i], tt.sandbox)
				}
			}
		})
	}
}
