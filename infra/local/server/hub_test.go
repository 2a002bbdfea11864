package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/shared/notify"
)

const testWait = 10 * time.Second

func quietHub(queue int) *Hub {
	return newHub(hubConfig{queueSize: queue, writeTimeout: time.Second}, slog.New(slog.DiscardHandler))
}

func TestHubPostToAnUnknownConnectionIsGone(t *testing.T) {
	h := quietHub(4)
	err := h.Post(context.Background(), "TWegAcC4EowCHnA=", []byte(`{}`))
	if !errors.Is(err, notify.ErrGone) {
		t.Fatalf("err = %v, want ErrGone", err)
	}
	if alive, err := h.Alive(context.Background(), "TWegAcC4EowCHnA="); alive || err != nil {
		t.Fatalf("Alive = %v, %v", alive, err)
	}
}

func TestHubTreatsAConnectionInItsConnectAsGone(t *testing.T) {
	h := quietHub(4)
	c, err := h.reserve("TWegAcC4EowCHnA=", "127.0.0.1", "test", "localhost", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer h.release(c)
	ctx := context.Background()
	if err := h.Post(ctx, c.id, []byte(`{}`)); !errors.Is(err, notify.ErrGone) {
		t.Errorf("Post = %v, want ErrGone: nothing can be posted during $connect", err)
	}
	if alive, _ := h.Alive(ctx, c.id); alive {
		t.Error("Alive = true during $connect")
	}
	if _, err := h.Info(c.id); !errors.Is(err, notify.ErrGone) {
		t.Errorf("Info = %v, want ErrGone", err)
	}
	if err := h.Close(c.id); !errors.Is(err, notify.ErrGone) {
		t.Errorf("Close = %v, want ErrGone", err)
	}
	if _, err := h.reserve(c.id, "", "", "", time.Now()); err == nil {
		t.Error("a reserved id was reserved twice")
	}
}

func TestHubQueuesForAnOpenConnectionBeforeItsWriterStarts(t *testing.T) {
	h := quietHub(2)
	c, _ := h.reserve("TWegAcC4EowCHnA=", "127.0.0.1", "test", "localhost", time.Now())
	defer h.release(c)
	c.open()
	ctx := context.Background()
	for i := range 2 {
		if err := h.Post(ctx, c.id, []byte(fmt.Sprint(i))); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	if err := h.Post(ctx, c.id, []byte("overflow")); !errors.Is(err, notify.ErrGone) {
		t.Fatalf("post to a full queue = %v, want ErrGone", err)
	}
	if code, reason := c.closeStatus(); code != websocket.StatusTryAgainLater || reason != "slow consumer" {
		t.Fatalf("closing with %v %q", code, reason)
	}
}

func TestHubRefusesAPayloadOverTheMessageLimit(t *testing.T) {
	h := quietHub(4)
	err := h.Post(context.Background(), "TWegAcC4EowCHnA=", make([]byte, notify.MaxMessageBytes+1))
	if !errors.Is(err, notify.ErrPayloadTooLarge) {
		t.Fatalf("err = %v, want ErrPayloadTooLarge", err)
	}
}

func TestHubRefusesConnectionsOnceShutDown(t *testing.T) {
	h := quietHub(4)
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.reserve("TWegAcC4EowCHnA=", "", "", "", time.Now()); !errors.Is(err, errShuttingDown) {
		t.Fatalf("reserve after Shutdown = %v", err)
	}
}

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
	s, err := New(Config{
		APIKeys:      map[string]string{key: owner},
		QueueSize:    4,
		WriteTimeout: time.Minute, // the slow client is cut by its full queue, not by a write timeout
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-errc; err != nil {
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
	for s.hub.Len() != 1 {
		select {
		case <-ctx.Done():
			t.Fatalf("the slow client's $disconnect did not run: %d connections", s.hub.Len())
		case <-time.After(5 * time.Millisecond):
		}
	}
	if conns, _ := s.store.ListConnections(ctx, owner, time.Now()); len(conns) != 1 || conns[0].ClientID != "fast" {
		t.Errorf("records after the slow client's disconnect: %+v", conns)
	}
}
