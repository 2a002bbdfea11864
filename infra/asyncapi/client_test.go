package asyncapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
)

// sendingServer is a WebSocket server that sends msgs, in order, to each
// client and then waits for it to close.
func sendingServer(t *testing.T, msgs ...[]byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		for _, m := range msgs {
			typ := websocket.MessageText
			if strings.HasPrefix(string(m), "\x00") {
				typ = websocket.MessageBinary
			}
			if err := c.Write(ctx, typ, m); err != nil {
				return
			}
		}
		_, _, _ = c.Read(ctx) // until the client closes
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func TestConnReadCatchesAMessageOffTheContract(t *testing.T) {
	const good = `{"type":"job_progress","jobId":"job_123","progress":65,"processedCount":65,"totalCount":100,"currentFile":"document.pdf"}`
	tests := []struct {
		name, msg string
		want      string // in the error; "" when the message is fine
	}{
		{"a seed event passes", good, ""},
		{"a progress over 100", strings.Replace(good, `"progress":65`, `"progress":150`, 1), "maximum"},
		{"a field the document does not list", strings.Replace(good, `{`, `{"extra":1,`, 1), "additional properties 'extra'"},
		{"a missing required field", strings.Replace(good, `"jobId":"job_123",`, ``, 1), "missing property 'jobId'"},
		{"a type no message has", `{"type":"job_started","jobId":"j"}`, `no message has type "job_started"`},
		{"a count as a string", strings.Replace(good, `"totalCount":100`, `"totalCount":"100"`, 1), "/totalCount"},
		{"a bad request answer with a job id", `{"type":"error","jobId":"","error":"x","code":"BAD_REQUEST"}`, "/jobId"},
		{"text that is not JSON", `pong`, "not JSON"},
		{"a binary message", "\x00{}", "text only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := asyncapi.Dial(ctx, sendingServer(t, []byte(tt.msg)), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(websocket.StatusNormalClosure, "")
			_, data, err := c.Read(ctx)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Read: %v", err)
			case tt.want == "":
				if string(data) != tt.msg {
					t.Fatalf("read %q", data)
				}
			case !errors.Is(err, asyncapi.ErrOffContract) || !strings.Contains(err.Error(), tt.want):
				t.Fatalf("Read error = %v; want ErrOffContract mentioning %q", err, tt.want)
			}
		})
	}
}

func TestReadUncheckedLetsATestsOwnBytesThrough(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := asyncapi.Dial(ctx, sendingServer(t, []byte(`{}`)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(websocket.StatusNormalClosure, "")
	if _, data, err := c.ReadUnchecked(ctx); err != nil || string(data) != `{}` {
		t.Fatalf("ReadUnchecked = %q, %v", data, err)
	}
}
