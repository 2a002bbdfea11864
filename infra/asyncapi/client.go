package asyncapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/coder/websocket"
)

// CheckReceived checks one message a client received against the
// repository's docs/asyncapi.yaml (see Document.CheckReceived).
func CheckReceived(data []byte) error {
	d, err := Load()
	if err != nil {
		return err
	}
	return d.CheckReceived(data)
}

// Conn is a test's WebSocket client: a *websocket.Conn whose Read holds every
// message to docs/asyncapi.yaml. Tests dial through Dial so that whatever
// they read is checked without their asking.
type Conn struct {
	*websocket.Conn
}

// Dial opens a WebSocket as websocket.Dial does, returning a checking Conn.
func Dial(ctx context.Context, url string, opts *websocket.DialOptions) (*Conn, *http.Response, error) {
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		return nil, resp, err
	}
	return &Conn{Conn: c}, resp, nil
}

// Read reads the next message. A message the document does not allow is
// returned with an error wrapping ErrOffContract: the server sends only text
// messages, each one of the messages the document lists.
func (c *Conn) Read(ctx context.Context) (websocket.MessageType, []byte, error) {
	typ, data, err := c.Conn.Read(ctx)
	if err != nil {
		return typ, data, err
	}
	if typ != websocket.MessageText {
		return typ, data, fmt.Errorf("%w: a %v message, but the server sends text only", ErrOffContract, typ)
	}
	if err := CheckReceived(data); err != nil {
		return typ, data, err
	}
	return typ, data, nil
}

// ReadUnchecked reads the next message without checking it. It is for a test
// that posted arbitrary bytes through the Management API, which delivers
// whatever it is given: those bytes are the test's, not the server's.
func (c *Conn) ReadUnchecked(ctx context.Context) (websocket.MessageType, []byte, error) {
	return c.Conn.Read(ctx)
}
