package kernel

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The Jupyter messaging protocol (5.3) as far as an execute client needs it:
// https://jupyter-client.readthedocs.io/en/stable/messaging.html

const protocolVersion = "5.3"

var delimiter = []byte("<IDS|MSG>")

type header struct {
	MsgID    string `json:"msg_id"`
	Session  string `json:"session"`
	Username string `json:"username"`
	Date     string `json:"date"`
	MsgType  string `json:"msg_type"`
	Version  string `json:"version"`
}

// message is a received message: its type, the id of the request it
// answers, and its content still encoded.
type message struct {
	Type    string
	Parent  string
	Content json.RawMessage
}

// signer signs and checks messages with the connection's key.
type signer struct {
	key     []byte
	session string
}

func newSigner() (signer, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return signer{}, err
	}
	return signer{key: []byte(hex.EncodeToString(key)), session: newMsgID()}, nil
}

func newMsgID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s signer) sign(parts ...[]byte) []byte {
	m := hmac.New(sha256.New, s.key)
	for _, p := range parts {
		m.Write(p)
	}
	return []byte(hex.EncodeToString(m.Sum(nil)))
}

// encode frames a request: delimiter, signature, header, parent header,
// metadata, content. It returns the frames and the new message's id.
func (s signer) encode(msgType string, content any) ([][]byte, string, error) {
	id := newMsgID()
	h, err := json.Marshal(header{
		MsgID: id, Session: s.session, Username: "hutch", MsgType: msgType, Version: protocolVersion,
		Date: time.Now().UTC().Format(time.RFC3339Nano),
	})
	if err != nil {
		return nil, "", err
	}
	c, err := json.Marshal(content)
	if err != nil {
		return nil, "", err
	}
	parent, meta := []byte("{}"), []byte("{}")
	return [][]byte{delimiter, s.sign(h, parent, meta, c), h, parent, meta, c}, id, nil
}

// decode checks a received message's signature and extracts what we use.
// Routing frames before the delimiter (iopub topics) are skipped.
func (s signer) decode(frames [][]byte) (message, error) {
	i := 0
	for i < len(frames) && !bytes.Equal(frames[i], delimiter) {
		i++
	}
	if len(frames) < i+6 {
		return message{}, errors.New("jupyter: short message")
	}
	sig, h, parent, meta, content := frames[i+1], frames[i+2], frames[i+3], frames[i+4], frames[i+5]
	if !hmac.Equal(sig, s.sign(h, parent, meta, content)) {
		return message{}, errors.New("jupyter: bad message signature")
	}
	var hd, ph header
	if err := json.Unmarshal(h, &hd); err != nil {
		return message{}, fmt.Errorf("jupyter: header: %w", err)
	}
	_ = json.Unmarshal(parent, &ph) // empty for unsolicited messages
	return message{Type: hd.MsgType, Parent: ph.MsgID, Content: content}, nil
}
