package envelope

import (
	"bytes"
	"errors"
	"io"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
)

// Framed output must decode as the ExecEvent protobuf says, for every size
// class of the 3-byte length.
func TestFrameOutputDecodes(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 16383, 16384, 1 << 20, MaxOutput} {
		for _, field := range []byte{2, 3} {
			buf := make([]byte, OutputHeadroom+n)
			for i := range n {
				buf[OutputHeadroom+i] = byte(i*7 + 1)
			}
			want := append([]byte(nil), buf[OutputHeadroom:]...)
			env := FrameOutput(buf, n, field)
			if got := int(env[1])<<24 | int(env[2])<<16 | int(env[3])<<8 | int(env[4]); got != len(env)-HeaderLen {
				t.Fatalf("n=%d: envelope length %d, want %d", n, got, len(env)-HeaderLen)
			}
			var ev hutchv1.ExecEvent
			if err := proto.Unmarshal(env[HeaderLen:], &ev); err != nil {
				t.Fatalf("n=%d: %v", n, err)
			}
			got := ev.GetStdout()
			if field == 3 {
				got = ev.GetStderr()
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("n=%d field %d: payload differs (got %d bytes)", n, field, len(got))
			}
		}
	}
}

func TestReadRequest(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMessage(&b, &hutchv1.ExecRequest{Sandbox: "x", Argv: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	raw := b.Bytes()
	var req hutchv1.ExecRequest
	env, err := ReadRequest(bytes.NewReader(raw), 1<<20, &req)
	if err != nil || req.Sandbox != "x" || !bytes.Equal(env, raw) {
		t.Fatalf("ReadRequest = %v %v", &req, err)
	}
	tests := []struct {
		name string
		in   []byte
		code connect.Code
	}{
		{"empty", nil, connect.CodeInvalidArgument},
		{"short body", raw[:len(raw)-1], connect.CodeInvalidArgument},
		{"compressed", append([]byte{1}, raw[1:]...), connect.CodeInvalidArgument},
		{"too big", []byte{0, 0x7f, 0xff, 0xff, 0xff}, connect.CodeResourceExhausted},
		{"garbage", []byte{0, 0, 0, 0, 2, 0xff, 0xff}, connect.CodeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadRequest(bytes.NewReader(tt.in), 1<<20, &hutchv1.ExecRequest{})
			if connect.CodeOf(err) != tt.code {
				t.Fatalf("err %v, want %v", err, tt.code)
			}
		})
	}
}

// Copy passes envelopes through and reports whether the stream ended.
func TestCopy(t *testing.T) {
	var src bytes.Buffer
	_ = WriteMessage(&src, &hutchv1.ExecEvent{Event: &hutchv1.ExecEvent_Stdout{Stdout: []byte("hi")}})
	_ = WriteEnd(&src, connect.NewError(connect.CodeDeadlineExceeded, errors.New("too slow")))
	whole := append([]byte(nil), src.Bytes()...)
	w := httptest.NewRecorder()
	ended, err := Copy(w, bytes.NewReader(whole))
	if !ended || err != nil || !bytes.Equal(w.Body.Bytes(), whole) {
		t.Fatalf("Copy: ended %v err %v", ended, err)
	}
	w = httptest.NewRecorder()
	ended, err = Copy(w, bytes.NewReader(whole[:len(whole)-3]))
	if ended || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated Copy: ended %v err %v", ended, err)
	}
	if !bytes.Contains(whole, []byte(`"code":"deadline_exceeded"`)) {
		t.Fatalf("end-stream error body: %q", whole)
	}
}
