package notify_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/notify/notifytest"
	"github.com/wsnotify/wsnotify/shared/store/memory"
)

// isolationMachine drives random connects, disconnects, vanishing clients and
// publishes, and after every step checks that each event reached exactly the
// live connections of its owner (or its one target client) and no one else.
type isolationMachine struct {
	n      *notify.Notifier
	push   *notifytest.Recorder
	clock  *clock
	live   map[string]map[string]string // owner -> client -> connection id
	owners []string
	seen   map[string]int // connection id -> messages already checked
	nextID int
	seq    int
}

var (
	isoOwners  = []string{"acct_1", "acct_2", "acct_3"}
	isoClients = []string{"tab-a", "tab-b", "tab-c", "phone"}
)

func newIsolationMachine(t *rapid.T) *isolationMachine {
	s := memory.New()
	for _, o := range isoOwners {
		_ = s.PutKey(context.Background(), auth.Key{Hash: auth.Hash("key-" + o), OwnerID: o})
	}
	c := &clock{now: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)}
	p := notifytest.NewRecorder()
	m := &isolationMachine{
		n: notify.New(auth.NewAuthenticator(s), s, p, slog.New(slog.NewTextHandler(io.Discard, nil)),
			notify.Config{Now: c.Now, ConnectGrace: time.Nanosecond, Concurrency: 4}),
		push: p, clock: c, owners: isoOwners,
		live: map[string]map[string]string{}, seen: map[string]int{},
	}
	for _, o := range isoOwners {
		m.live[o] = map[string]string{}
	}
	return m
}

func (m *isolationMachine) Connect(t *rapid.T) {
	owner := rapid.SampledFrom(m.owners).Draw(t, "owner")
	client := rapid.SampledFrom(isoClients).Draw(t, "client")
	m.nextID++
	id := fmt.Sprintf("conn%04d=", m.nextID)
	_, err := m.n.Connect(context.Background(), notify.ConnectRequest{Token: "key-" + owner, ClientID: client, ConnectionID: id})
	if _, taken := m.live[owner][client]; taken {
		if notify.ErrorCode(err) != notify.CodeConflict {
			t.Fatalf("connect of live %s/%s: %v, want CONFLICT", owner, client, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("connect %s/%s: %v", owner, client, err)
	}
	m.live[owner][client] = id
}

func (m *isolationMachine) Disconnect(t *rapid.T) {
	owner := rapid.SampledFrom(m.owners).Draw(t, "owner")
	client := rapid.SampledFrom(isoClients).Draw(t, "client")
	id, ok := m.live[owner][client]
	if !ok {
		id = "never-connected="
	}
	if err := m.n.Disconnect(context.Background(), id); err != nil {
		t.Fatalf("disconnect: %v", err)
	}
	delete(m.live[owner], client)
}

// Vanish drops a connection without a $disconnect, as API Gateway may: the
// next publish sees 410 and must clean up, and deliver nothing to it.
func (m *isolationMachine) Vanish(t *rapid.T) {
	owner := rapid.SampledFrom(m.owners).Draw(t, "owner")
	client := rapid.SampledFrom(isoClients).Draw(t, "client")
	if id, ok := m.live[owner][client]; ok {
		m.push.SetGone(id)
		delete(m.live[owner], client)
	}
}

func (m *isolationMachine) Publish(t *rapid.T) {
	owner := rapid.SampledFrom(append([]string{"acct_nobody"}, m.owners...)).Draw(t, "owner")
	target := ""
	if rapid.Bool().Draw(t, "targeted") {
		target = rapid.SampledFrom(isoClients).Draw(t, "target")
	}
	m.seq++
	jobID := fmt.Sprintf("job_%d", m.seq)
	ev := event.JobComplete{Type: event.TypeJobComplete, JobID: jobID, Status: event.StatusCompleted}
	if _, err := m.n.Publish(context.Background(), owner, target, "", ev); err != nil {
		t.Fatalf("publish: %v", err)
	}
	want, _ := event.Marshal(ev)
	expected := map[string]bool{}
	for client, id := range m.live[owner] {
		if target == "" || client == target {
			expected[id] = true
		}
	}
	for i := 1; i <= m.nextID; i++ {
		id := fmt.Sprintf("conn%04d=", i)
		sent := m.push.Sent(id)
		fresh := sent[m.seen[id]:]
		m.seen[id] = len(sent)
		switch {
		case expected[id] && (len(fresh) != 1 || notifytest.Unstamp(fresh[0]) != string(want)):
			t.Fatalf("%s (of %s) got %q, want exactly %s", id, owner, fresh, want)
		case !expected[id] && len(fresh) != 0:
			t.Fatalf("%s got %q, which was for %s/%q only", id, fresh, owner, target)
		}
	}
}

// Check runs after every step: time moves on, so young-connection grace
// never hides a gone connection.
func (m *isolationMachine) Check(*rapid.T) { m.clock.Advance(time.Second) }

func TestTenantIsolationHoldsAfterEveryStep(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		t.Repeat(rapid.StateMachineActions(newIsolationMachine(t)))
	})
}
