package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/infra/local/server"
)

const (
	keyA   = "wsn_test_key_of_owner_a"
	keyB   = "wsn_test_key_of_owner_b"
	ownerA = "acct_A"
	ownerB = "acct_B"
)

func twoOwners() server.Config {
	return server.Config{APIKeys: map[string]string{keyA: ownerA, keyB: ownerB}}
}

func eventsReachTheirOwnerOnlyInOrderAndInTheSeedShape(t *testing.T, store newStore) {
	h := start(t, onStore(twoOwners(), store(t)))
	a1 := h.connect(t, "a1", keyA)
	a2 := h.connect(t, "a2", keyA)
	b1 := h.connect(t, "b1", keyB)

	failed := h.publishJobs(t,
		envelope(ownerA, "", seedJobProgress),
		`{"ownerId":"acct_A","event":{"type":"job_progress","jobId":"job_123"}}`, // invalid: fields missing
		envelope(ownerA, "", seedJobComplete),
		envelope(ownerA, "a1", seedError), // for client a1 only
	)
	if strings.Join(failed, ",") != "m2" {
		t.Fatalf("batchItemFailures = %v, want exactly the invalid record m2", failed)
	}
	h.upload(t, "uploads/"+ownerA+"/newfile.pdf", 512000)
	// A marker per owner, last: the first thing b1 receives must be its own
	// marker, so it received none of owner A's events.
	markerA := `{"type":"job_complete","jobId":"marker_a","status":"completed","organized":1,"failed":0}`
	markerB := `{"type":"job_complete","jobId":"marker_b","status":"completed","organized":1,"failed":0}`
	if failed := h.publishJobs(t, envelope(ownerA, "", markerA), envelope(ownerB, "", markerB)); len(failed) > 0 {
		t.Fatalf("markers failed: %v", failed)
	}

	t.Run("the targeted client gets every event of its owner in order", func(t *testing.T) {
		sameShape(t, read(t, a1), seedJobProgress)
		sameShape(t, read(t, a1), seedJobComplete)
		sameShape(t, read(t, a1), seedError)
		sameShape(t, read(t, a1), seedFileUploaded, "fileId")
		sameShape(t, read(t, a1), markerA)
	})
	t.Run("another client of the owner misses only the event targeted at a1", func(t *testing.T) {
		sameShape(t, read(t, a2), seedJobProgress)
		sameShape(t, read(t, a2), seedJobComplete)
		up := read(t, a2)
		sameShape(t, up, seedFileUploaded, "fileId")
		if id, _ := up["fileId"].(string); !strings.HasPrefix(id, "file_") {
			t.Errorf("fileId = %v", up["fileId"])
		}
		sameShape(t, read(t, a2), markerA)
	})
	t.Run("the other owner receives nothing but its own marker", func(t *testing.T) {
		sameShape(t, read(t, b1), markerB)
	})
}

func connectIsRefusedAsAPIGatewayRefusesIt(t *testing.T, store newStore) {
	h := start(t, onStore(twoOwners(), store(t)))
	h.connect(t, "taken", keyA)
	tests := []struct {
		name, rawClientID, token string
		status                   int
		code                     string
	}{
		{"no token", "c1", "", http.StatusUnauthorized, "UNAUTHORIZED"},
		{"a wrong token", "c1", "wsn_not_a_key", http.StatusUnauthorized, "UNAUTHORIZED"},
		{"a client id of 129 characters", strings.Repeat("x", 129), keyA, http.StatusBadRequest, "BAD_REQUEST"},
		{"a client id with a slash", "a/b", keyA, http.StatusBadRequest, "BAD_REQUEST"},
		{"a client id with an escaped slash", "a%2Fb", keyA, http.StatusBadRequest, "BAD_REQUEST"},
		{"a client id with a space", "bad%20id", keyA, http.StatusBadRequest, "BAD_REQUEST"},
		{"an empty client id", "", keyA, http.StatusBadRequest, "BAD_REQUEST"},
		{"a client id live for the same owner", "taken", keyA, http.StatusConflict, "CONFLICT"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused with "+http.StatusText(tt.status), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			c, resp, err := h.dial(ctx, tt.rawClientID, tt.token)
			if err == nil {
				c.CloseNow()
				t.Fatal("connected")
			}
			if resp == nil || resp.StatusCode != tt.status {
				t.Fatalf("response %v, err %v; want status %d", resp, err, tt.status)
			}
			body, _ := io.ReadAll(resp.Body)
			var e map[string]any
			if json.Unmarshal(body, &e) != nil || e["type"] != "error" || e["code"] != tt.code {
				t.Fatalf("body %s, want an error event with code %s", body, tt.code)
			}
		})
	}
	t.Run("the same client id under another owner connects", func(t *testing.T) {
		h.connect(t, "taken", keyB)
		// A refused connection leaves the hub just after its answer is sent.
		eventually(t, "the hub to hold only the 2 accepted connections", func() bool { return h.srv.Hub().Len() == 2 })
	})
}

func clientMessagesGoThroughTheDefaultRoute(t *testing.T, store newStore) {
	h := start(t, onStore(twoOwners(), store(t)))
	c := h.connect(t, "talker", keyA)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	send := func(msg string) {
		t.Helper()
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("ping is answered with pong", func(t *testing.T) {
		send(`{"action":"ping"}`)
		if m := read(t, c); m["type"] != "pong" || len(m) != 1 {
			t.Fatalf("got %v", m)
		}
	})
	for _, msg := range []string{`hello`, `{"type":"ping"}`, `{"action":"dance"}`} {
		t.Run(msg+" is answered with a BAD_REQUEST error event", func(t *testing.T) {
			send(msg)
			m := read(t, c)
			if m["type"] != "error" || m["code"] != "BAD_REQUEST" || m["error"] == "" {
				t.Fatalf("got %v", m)
			}
		})
	}
	t.Run("a binary message is refused and the connection stays open", func(t *testing.T) {
		if err := c.Write(ctx, websocket.MessageBinary, []byte(`{"action":"ping"}`)); err != nil {
			t.Fatal(err)
		}
		if m := read(t, c); m["code"] != "BAD_REQUEST" {
			t.Fatalf("got %v", m)
		}
	})
	t.Run("the connection still works after bad messages", func(t *testing.T) {
		send(`{"action":"ping"}`)
		if m := read(t, c); m["type"] != "pong" {
			t.Fatalf("got %v", m)
		}
	})
	t.Run("a message over 128 KB closes the connection with 1009", func(t *testing.T) {
		big := `{"action":"ping","pad":"` + strings.Repeat("x", 128*1024) + `"}`
		_ = c.Write(ctx, websocket.MessageText, []byte(big)) // the server may cut the write short
		if ce := readClose(t, c); ce.Code != websocket.StatusMessageTooBig {
			t.Fatalf("closed with %v, want 1009", ce)
		}
		eventually(t, "the disconnect", func() bool { return h.srv.Hub().Len() == 0 })
	})
}

func aClientIDIsFreeOnceItsConnectionHasClosed(t *testing.T, store newStore) {
	h := start(t, onStore(twoOwners(), store(t)))
	c := h.connect(t, "again", keyA)
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the disconnect", func() bool { return h.srv.Hub().Len() == 0 })
	c = h.connect(t, "again", keyA)
	if err := c.Write(context.Background(), websocket.MessageText, []byte(`{"action":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	if m := read(t, c); m["type"] != "pong" {
		t.Fatalf("got %v", m)
	}
}

func theRawAPIGatewayURLTakesTheClientIDFromTheQuery(t *testing.T, store newStore) {
	h := start(t, onStore(server.Config{APIKeys: map[string]string{keyA: ownerA}, Stage: "dev"}, store(t)))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, _, err := asyncapi.Dial(ctx, "ws://"+h.host+"/dev?client_id=raw&token="+url.QueryEscape(keyA), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if id := h.connectionID(t, ownerA, "raw"); len(id) != 16 || !strings.HasSuffix(id, "=") {
		t.Errorf("connection id %q is not of API Gateway's shape", id)
	}
}

func shutdownClosesEveryConnectionWithGoingAwayAndRunsItsDisconnect(t *testing.T, store newStore) {
	h := start(t, onStore(twoOwners(), store(t)))
	a := h.connect(t, "a", keyA)
	b := h.connect(t, "b", keyB)
	// A message queued before the shutdown is still delivered.
	if err := h.srv.Hub().Post(context.Background(), h.connectionID(t, ownerA, "a"), []byte(`{"type":"pong"}`)); err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		code websocket.StatusCode
		read []string
	}
	closed := make(chan outcome, 2)
	for _, c := range []*asyncapi.Conn{a, b} {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			var o outcome
			for {
				_, data, err := c.Read(ctx)
				if err == nil {
					o.read = append(o.read, string(data))
					continue
				}
				o.code = websocket.CloseStatus(err)
				closed <- o
				return
			}
		}()
	}
	h.stop()
	var messages []string
	for range 2 {
		o := <-closed
		if o.code != websocket.StatusGoingAway {
			t.Errorf("closed with %v, want 1001", o.code)
		}
		messages = append(messages, o.read...)
	}
	if len(messages) != 1 || messages[0] != `{"type":"pong"}` {
		t.Errorf("read %q before the close, want exactly the queued message", messages)
	}
	if n := h.srv.Hub().Len(); n != 0 {
		t.Errorf("%d connections left after Shutdown", n)
	}
	for _, owner := range []string{ownerA, ownerB} {
		conns, _ := h.srv.Store().ListConnections(context.Background(), owner, time.Now())
		if len(conns) != 0 {
			t.Errorf("%s still has records %v: $disconnect did not run", owner, conns)
		}
	}
}
