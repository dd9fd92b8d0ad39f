package watch

import (
	"fmt"
	"strconv"
	"strings"
)

// journalSize is how many changed paths a tree remembers for CheckChanges.
const journalSize = 16384

// journal numbers a tree's events and remembers the latest changed paths,
// so a client can ask what changed since a version it saw. Versions are
// "EPOCH.SEQ": a new tree has a new epoch, so versions of a tree that was
// dropped are recognised as unknown.
type journal struct {
	epoch   string
	seq     uint64
	lostAt  uint64  // seq of the last event that reported lost events
	dropped uint64  // seq of the newest entry overwritten
	ring    []entry // oldest at start, once full
	start   int
}

type entry struct {
	seq  uint64
	path string
}

func (j *journal) version(seq uint64) string { return j.epoch + "." + strconv.FormatUint(seq, 10) }

func (j *journal) at(i int) *entry { return &j.ring[(j.start+i)%len(j.ring)] }

// add numbers one event; p is empty for events that change no path.
func (j *journal) add(p string, lost bool) uint64 {
	j.seq++
	if lost {
		j.lostAt = j.seq
	}
	if p == "" {
		return j.seq
	}
	if n := len(j.ring); n > 0 {
		if last := j.at(n - 1); last.path == p {
			last.seq = j.seq // a burst on one path takes one entry
			return j.seq
		}
	}
	if len(j.ring) < journalSize {
		j.ring = append(j.ring, entry{seq: j.seq, path: p})
		return j.seq
	}
	old := j.at(0)
	j.dropped = old.seq
	*old = entry{seq: j.seq, path: p}
	j.start = (j.start + 1) % journalSize
	return j.seq
}

// changes is the answer to "what changed since version v".
type changes struct {
	unknown  string // set when the journal cannot tell: why
	paths    []string
	complete bool
}

func (j *journal) since(v string) changes {
	epoch, s, ok := strings.Cut(v, ".")
	seq, err := strconv.ParseUint(s, 10, 64)
	switch {
	case !ok || err != nil:
		return changes{unknown: fmt.Sprintf("version %q is not one this agent gave out", v)}
	case epoch != j.epoch:
		return changes{unknown: "the watch state that version belongs to is gone (expired, or the sandbox restarted)"}
	case seq > j.seq:
		return changes{unknown: fmt.Sprintf("version %q is newer than the watch's", v)}
	case j.lostAt > seq:
		return changes{unknown: "events were lost since that version"}
	}
	c := changes{complete: j.dropped <= seq}
	seen := map[string]bool{}
	for i := range len(j.ring) {
		if e := j.at(i); e.seq > seq && !seen[e.path] {
			seen[e.path] = true
			c.paths = append(c.paths, e.path)
		}
	}
	return c
}
