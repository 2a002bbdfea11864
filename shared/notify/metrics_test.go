package notify_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/store/memory"
)

type brokenKeys struct{}

func (brokenKeys) LookupKey(context.Context, string) (auth.Key, error) {
	return auth.Key{}, errors.New("table unreachable")
}

// metricsLog is a notify.Metrics that keeps every call.
type metricsLog struct {
	mu        sync.Mutex
	accepted  []int // ownerConnections of each
	refused   []notify.Code
	gone      int // Disconnected calls
	published []notify.Publication
}

func (m *metricsLog) ConnectAccepted(n int) {
	m.mu.Lock()
	m.accepted = append(m.accepted, n)
	m.mu.Unlock()
}
func (m *metricsLog) ConnectRefused(c notify.Code) {
	m.mu.Lock()
	m.refused = append(m.refused, c)
	m.mu.Unlock()
}
func (m *metricsLog) Disconnected() { m.mu.Lock(); m.gone++; m.mu.Unlock() }
func (m *metricsLog) Published(p notify.Publication) {
	m.mu.Lock()
	m.published = append(m.published, p)
	m.mu.Unlock()
}

func TestConnectsAreCountedAcceptedOrRefusedByCode(t *testing.T) {
	ctx := context.Background()
	m := &metricsLog{}
	f := newFixture(t, notify.Config{Metrics: m, ConnectBurst: 3, ConnectRate: 0.001, MaxConnectionsPerOwner: 2})
	f.connect(t, "key-a", "c1", "a1")
	f.connect(t, "key-a", "c2", "a2")
	refusals := []struct {
		req  notify.ConnectRequest
		want notify.Code
	}{
		{notify.ConnectRequest{Token: "key-a", ClientID: "a/b", ConnectionID: "x"}, notify.CodeInvalid},
		{notify.ConnectRequest{Token: "nope", ClientID: "c9", ConnectionID: "x"}, notify.CodeUnauthorized},
		{notify.ConnectRequest{Token: "key-a", ClientID: "c3", ConnectionID: "x"}, notify.CodeForbidden},   // the cap of 2
		{notify.ConnectRequest{Token: "key-a", ClientID: "c4", ConnectionID: "x"}, notify.CodeRateLimited}, // the burst of 3 is spent
		{notify.ConnectRequest{Token: "key-b", ClientID: "c1", ConnectionID: "b1"}, ""},
		{notify.ConnectRequest{Token: "key-b", ClientID: "c1", ConnectionID: "b2"}, notify.CodeConflict},
	}
	for _, r := range refusals {
		_, err := f.n.Connect(ctx, r.req)
		if notify.ErrorCode(err) != r.want && !(r.want == "" && err == nil) {
			t.Fatalf("Connect(%+v) = %v, want %q", r.req, err, r.want)
		}
	}
	// A store that cannot read keys: the service failed, not the client.
	broken := notify.New(auth.NewAuthenticator(brokenKeys{}), memory.New(), f.push, slog.New(slog.DiscardHandler), notify.Config{Metrics: m})
	if _, err := broken.Connect(ctx, notify.ConnectRequest{Token: "key-b", ClientID: "c5", ConnectionID: "b5"}); err == nil {
		t.Fatal("a connect succeeded with the key store down")
	}

	if got := fmt.Sprint(m.accepted); got != "[0 1 0]" {
		t.Errorf("accepted with owner counts %s, want [0 1 0] (owner-a's two, owner-b's first)", got)
	}
	want := []notify.Code{notify.CodeInvalid, notify.CodeUnauthorized, notify.CodeForbidden, notify.CodeRateLimited, notify.CodeConflict, notify.CodeInternal}
	if fmt.Sprint(m.refused) != fmt.Sprint(want) {
		t.Errorf("refused %v, want %v", m.refused, want)
	}
}

func TestDisconnectsAreCountedWhenTheyRemoveARecord(t *testing.T) {
	ctx := context.Background()
	m := &metricsLog{}
	f := newFixture(t, notify.Config{Metrics: m})
	f.connect(t, "key-a", "c1", "a1")
	for _, id := range []string{"a1", "a1", "never"} {
		if err := f.n.Disconnect(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if m.gone != 1 {
		t.Fatalf("%d disconnects counted, want 1: a second $disconnect, or one of an unknown id, removes nothing", m.gone)
	}
}

func TestPublishesAreCountedByThePathTheirContextCameBy(t *testing.T) {
	m := &metricsLog{}
	f := newFixture(t, notify.Config{Metrics: m})
	f.connect(t, "key-a", "c1", "a1")
	for _, p := range []notify.Path{notify.PathAPI, notify.PathQueue, notify.PathS3, ""} {
		ctx := context.Background()
		if p != "" {
			ctx = notify.WithPath(ctx, p)
		}
		if _, err := f.n.Publish(ctx, "owner-a", "", "", progress); err != nil {
			t.Fatal(err)
		}
	}
	var got []notify.Path
	for _, p := range m.published {
		got = append(got, p.Path)
	}
	if want := []notify.Path{notify.PathAPI, notify.PathQueue, notify.PathS3, ""}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("publishes counted with paths %q, want %q (an unmarked context has none)", got, want)
	}
}
