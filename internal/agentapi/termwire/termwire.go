// Package termwire is the terminal WebSocket protocol (DESIGN §3), shared by
// the agent that serves it, the daemon that relays it and the SDK that
// speaks it: terminal bytes travel as binary frames both ways; control
// messages are JSON text frames.
package termwire

import (
	"encoding/json"
	"fmt"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// Control message types.
const (
	TypeResize = "resize" // client → server: cols, rows
	TypeReady  = "ready"  // server → client: attached; replay and live output follow
	TypeExit   = "exit"   // server → client: the shell exited with code
	TypeError  = "error"  // server → client: message
)

// Message is one control frame.
type Message struct {
	Type    string `json:"type"`
	Cols    int    `json:"cols,omitempty"`
	Rows    int    `json:"rows,omitempty"`
	Code    *int   `json:"code,omitempty"` // set for exit, even when 0
	Message string `json:"message,omitempty"`
}

// Size bounds: a resize outside them is clamped, never refused.
const (
	MaxCols = 1000
	MaxRows = 500
)

// Default size of a terminal created without one.
const (
	DefaultCols = 80
	DefaultRows = 24
)

// Clamp bounds a requested size to 1..MaxCols × 1..MaxRows.
func Clamp(cols, rows int) (int, int) {
	return min(max(cols, 1), MaxCols), min(max(rows, 1), MaxRows)
}

// Resize is the client's resize frame.
func Resize(cols, rows int) []byte {
	b, _ := json.Marshal(Message{Type: TypeResize, Cols: cols, Rows: rows})
	return b
}

// Ready, Exit and Error are the server's frames.
func Ready() []byte { return []byte(`{"type":"ready"}`) }

// Exit is the frame telling clients the shell exited with code.
func Exit(code int) []byte {
	b, _ := json.Marshal(Message{Type: TypeExit, Code: &code})
	return b
}

// Error is the frame reporting a problem with what the client sent.
func Error(msg string) []byte {
	b, _ := json.Marshal(Message{Type: TypeError, Message: msg})
	return b
}

// Parse decodes a control frame; anything malformed or unknown is
// invalid_argument, with what was wrong.
func Parse(b []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return Message{}, fmt.Errorf("control frame is not JSON (%v): %w", err, errdefs.ErrInvalidArgument)
	}
	switch m.Type {
	case TypeResize:
		return m, nil
	case TypeReady, TypeExit, TypeError:
		return m, nil
	case "":
		return Message{}, fmt.Errorf("control frame without a type: %w", errdefs.ErrInvalidArgument)
	}
	return Message{}, fmt.Errorf("control frame type %q: unknown (want resize): %w", m.Type, errdefs.ErrInvalidArgument)
}
