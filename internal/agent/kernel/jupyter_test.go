package kernel

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

func TestMessageRoundTrip(t *testing.T) {
	sg, err := newSigner()
	if err != nil {
		t.Fatal(err)
	}
	frames, id, err := sg.encode("execute_request", map[string]any{"code": "1+1"})
	if err != nil {
		t.Fatal(err)
	}
	// A reply as the kernel frames it: routing frames, then the message,
	// with our request as its parent.
	var hdr header
	if err := json.Unmarshal(frames[2], &hdr); err != nil || hdr.MsgID != id || hdr.Version != protocolVersion {
		t.Fatalf("header %+v: %v", hdr, err)
	}
	reply := []byte(`{"msg_id":"r1","msg_type":"execute_reply"}`)
	content := []byte(`{"status":"ok","execution_count":3}`)
	meta := []byte("{}")
	in := [][]byte{[]byte("topic"), delimiter, sg.sign(reply, frames[2], meta, content), reply, frames[2], meta, content}
	m, err := sg.decode(in)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != "execute_reply" || m.Parent != id || string(m.Content) != string(content) {
		t.Fatalf("decoded %+v", m)
	}
	for name, bad := range map[string][][]byte{
		"bad signature": {delimiter, []byte("00"), reply, frames[2], meta, content},
		"short":         {delimiter, []byte("00"), reply},
		"no delimiter":  {reply, frames[2], meta, content},
	} {
		if _, err := sg.decode(bad); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestPythonError(t *testing.T) {
	content, _ := json.Marshal(map[string]any{
		"ename": "ZeroDivisionError", "evalue": "division by zero",
		"traceback": []string{
			"\x1b[0;31m----------------------------------------------\x1b[0m",
			"Cell \x1b[0;32mIn[4], line 3\x1b[0m\n\x1b[1;32m----> 3\x1b[0m f()\n",
			"Cell \x1b[0;32mIn [2], line 2\x1b[0m, in \x1b[0;36mf\x1b[0;34m()\x1b[0m\n----> 2 1/0\n",
			"\x1b[0;31mZeroDivisionError\x1b[0m: division by zero",
		},
	})
	// Only frames of the running cell (In[4]) give the line.
	e := pythonError(content, "4")
	if e.Name != "ZeroDivisionError" || e.Value != "division by zero" || e.Line != 3 {
		t.Fatalf("%+v", e)
	}
	for _, l := range e.Traceback {
		if ansi.MatchString(l) {
			t.Fatalf("colour left in %q", l)
		}
	}
}

func TestMimeBundle(t *testing.T) {
	raw := map[string]json.RawMessage{
		"text/plain":       json.RawMessage(`"x"`),
		"text/html":        json.RawMessage(`["<b>", "x</b>"]`),
		"application/json": json.RawMessage(`{"a": 1}`),
	}
	got := mimeBundle(raw)
	if got["text/plain"] != "x" || got["text/html"] != "<b>x</b>" || got["application/json"] != `{"a":1}` {
		t.Fatalf("%v", got)
	}
}

func TestParseLanguage(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{{"python", Python}, {"PY", Python}, {"js", JavaScript}, {"typescript", TypeScript}, {"ts", TypeScript}, {"cobol", ""}, {"", ""}} {
		got, err := ParseLanguage(tc.in)
		if got != tc.want || (tc.want == "") != errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseLanguage(%q) = %q, %v", tc.in, got, err)
		}
	}
}
