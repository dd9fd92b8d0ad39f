package mcp

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/hutch-sh/hutch/client"
)

// toolError is what the model reads when a call failed: the daemon's own
// words, which say what was wrong, and what to do next. The SDK turns it
// into a result with isError set, not a protocol error, so the model sees it.
func toolError(err error, hint string) error {
	if hint == "" {
		hint = categoryHint(err)
	}
	if hint == "" {
		return err
	}
	return fmt.Errorf("%w (%s)", err, hint)
}

func categoryHint(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "no hutch daemon answers: start one with `hutch serve`, or point HUTCH_URL (and HUTCH_TOKEN) in the environment of `hutch mcp` at one"
	case errors.Is(err, client.ErrUnauthenticated):
		return "the hutch daemon requires an API key: set HUTCH_TOKEN in the environment of `hutch mcp`, or send Authorization: Bearer KEY to /mcp"
	case errors.Is(err, client.ErrDeadlineExceeded):
		return "it ran out of time: raise timeout_seconds, or run it in the background with start_process"
	case errors.Is(err, client.ErrResourceExhausted):
		return "a limit was reached: free something (destroy sandboxes you no longer need, delete big files) or ask for less"
	case errors.Is(err, client.ErrUnavailable):
		return "the hutch daemon or the sandbox did not answer: check that `hutch serve` runs at HUTCH_URL, then retry; a sandbox may be restarting"
	}
	return ""
}
