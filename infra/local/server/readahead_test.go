package server_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAMessageSentWithTheHandshakeIsRead sends a WebSocket handshake and a
// ping message in one write, before the server's answer, so that net/http
// reads part of the message ahead with the request. The connection's own
// buffers, which replace net/http's once it is hijacked, must start with
// those bytes: the server answers the ping with a pong, rather than reading
// the message from its second byte and closing the connection with 1002.
func TestAMessageSentWithTheHandshakeIsRead(t *testing.T) {
	t.Parallel()
	h := start(t, twoOwners())
	conn, err := net.Dial("tcp", h.host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(wait))

	handshake := "GET /api/v1/ws/early-bird?token=" + keyA + " HTTP/1.1\r\n" +
		"Host: " + h.host + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, handshake+string(maskedText(`{"action":"ping"}`))); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake answered %v, %v; want 101", resp, err)
	}
	// An unmasked server frame: FIN and opcode, then a short length.
	header := make([]byte, 2)
	if _, err := io.ReadFull(br, header); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, header[1]&0x7f)
	if _, err := io.ReadFull(br, payload); err != nil {
		t.Fatal(err)
	}
	if header[0] != 0x81 || !strings.Contains(string(payload), `"pong"`) {
		t.Fatalf("got frame %x %q, want a text message with the pong", header, payload)
	}
}

// maskedText is a client's text frame of a short message (RFC 6455 §5.2),
// masked as every client frame must be.
func maskedText(msg string) []byte {
	mask := []byte{0x37, 0xfa, 0x21, 0x3d}
	frame := append([]byte{0x81, 0x80 | byte(len(msg))}, mask...)
	for i := range len(msg) {
		frame = append(frame, msg[i]^mask[i%4])
	}
	return frame
}
