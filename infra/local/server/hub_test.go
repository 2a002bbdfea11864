package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/push/hub"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

const testWait = 10 * time.Second

func TestConnectionIDsHaveAPIGatewaysShape(t *testing.T) {
	shape := regexp.MustCompile(`^[A-Za-z0-9+/]{15}=$`)
	seen := map[string]bool{}
	for range 1000 {
		id := newConnectionID()
		if !shape.MatchString(id) || seen[id] {
			t.Fatalf("id %q: wrong shape or repeated", id)
		}
		seen[id] = true
	}
}

func TestHubClosesASlowConsumerAndKeepsServingTheOthers(t *testing.T) {
	const key, owner = "wsn_slow_test_key", "acct_slow"
	logs := &testenv.SyncBuffer{}
	s, err := New(Config{
		APIKeys: map[string]string{key: owner},
		// The slow client is cut by its full queue, not by a write timeout.
		Connections: hub.Config{QueueMessages: 4, WriteTimeout: time.Minute},
		Logger:      slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, stop := s.Start(l, testWait)
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	dial := func(clientID string) (*asyncapi.Conn, string) {
		c, _, err := asyncapi.Dial(ctx, "ws://"+l.Addr().String()+"/api/v1/ws/"+clientID+"?token="+key, nil)
		if err != nil {
			t.Fatalf("dial %s: %v", clientID, err)
		}
		c.SetReadLimit(2 * notify.MaxMessageBytes)
		conns, _ := s.store.ListConnections(ctx, owner, time.Now())
		for _, rec := range conns {
			if rec.ClientID == clientID {
				return c, rec.ConnectionID
			}
		}
		t.Fatalf("no record for %s", clientID)
		return nil, ""
	}
	slow, slowID := dial("slow")
	defer slow.CloseNow()
	fast, fastID := dial("fast")
	defer fast.CloseNow()
	readFast := func(want string) {
		t.Helper()
		_, data, err := fast.ReadUnchecked(ctx) // the test's own bytes, posted to the hub
		if err != nil || string(data) != want {
			t.Fatalf("fast client read %q, %v; want %q", data, err, want)
		}
	}

	// The slow client never reads: once the socket buffers are full, its
	// writer blocks and its queue fills. The fast client reads each message
	// before the next round, and must never be affected.
	big := bytes.Repeat([]byte("x"), notify.MaxMessageBytes)
	rounds := 0
	for {
		err := s.hub.Post(ctx, slowID, big)
		if errors.Is(err, notify.ErrGone) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rounds++
		msg := fmt.Sprintf(`{"n":%d}`, rounds)
		if err := s.hub.Post(ctx, fastID, []byte(msg)); err != nil {
			t.Fatalf("post to the fast client: %v", err)
		}
		readFast(msg)
		if ctx.Err() != nil {
			t.Fatalf("the slow client was not closed after %d rounds", rounds)
		}
	}
	t.Logf("the slow client was closed after %d rounds", rounds)
	if alive, _ := s.hub.Alive(ctx, slowID); alive {
		t.Error("the slow client is still alive")
	}
	if err := s.hub.Post(ctx, slowID, []byte(`{}`)); !errors.Is(err, notify.ErrGone) {
		t.Errorf("post after the close = %v, want ErrGone", err)
	}
	if err := s.hub.Post(ctx, fastID, []byte(`{"n":"after"}`)); err != nil {
		t.Fatal(err)
	}
	readFast(`{"n":"after"}`)

	// Reading at last, the slow client gets what was already sent, then the
	// close frame saying why.
	for {
		_, _, err := slow.ReadUnchecked(ctx) // the test's own bytes, posted to the hub
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusTryAgainLater || ce.Reason != "slow consumer" {
			t.Fatalf("slow client ended with %v, want 1013 slow consumer", err)
		}
		break
	}
	// The line comes once the slow client's $disconnect has run.
	closed := fmt.Sprintf(`msg="websocket closed" connectionId=%q`, slowID)
	if _, ok := logs.WaitFor(testWait, ctx.Done(), func(text string) bool { return strings.Contains(text, closed) }); !ok {
		t.Fatalf("the slow client's $disconnect did not run:\n%s", logs)
	}
	if conns, _ := s.store.ListConnections(ctx, owner, time.Now()); len(conns) != 1 || conns[0].ClientID != "fast" {
		t.Errorf("records after the slow client's disconnect: %+v", conns)
	}
}
