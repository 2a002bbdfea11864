package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/notify"
)

// The publish's log line, written for every event, carries what is not
// empty, false or zero only: CloudWatch Logs charges by the byte.
func TestThePublishLogLineLeavesOutWhatIsEmpty(t *testing.T) {
	f := newFixture(t, notify.Config{})
	var logs bytes.Buffer
	f.n = notify.New(auth.NewAuthenticator(f.store), f.store, f.push, slog.New(slog.NewJSONHandler(&logs, nil)), notify.Config{Now: f.clock.Now})
	f.connect(t, "key-a", "live", "conn-live")
	f.connect(t, "key-a", "gone", "conn-gone")
	line := func() map[string]any {
		t.Helper()
		var last map[string]any
		for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err == nil && m["msg"] == "published" {
				last = m
			}
		}
		if last == nil {
			t.Fatalf("no published line in %s", logs.String())
		}
		return last
	}
	if _, err := f.n.Publish(context.Background(), "owner-a", "", "evt-1", progress); err != nil {
		t.Fatal(err)
	}
	got := line()
	for _, k := range []string{"owner", "type", "id", "seq", "delivered"} {
		if _, ok := got[k]; !ok {
			t.Errorf("line %v has no %s", got, k)
		}
	}
	for _, k := range []string{"clientId", "duplicate", "gone", "connecting", "failed"} {
		if _, ok := got[k]; ok {
			t.Errorf("line %v has %s, empty", got, k)
		}
	}
	f.clock.Advance(time.Minute)
	f.push.SetGone("conn-gone")
	if _, err := f.n.Publish(context.Background(), "owner-a", "", "evt-1", progress); err != nil {
		t.Fatal(err)
	}
	if got := line(); got["duplicate"] != true || got["gone"] != 1.0 || got["delivered"] != 1.0 {
		t.Errorf("line of a redelivery with a gone connection: %v", got)
	}
}

// With CleanPublishLevel Debug (the Lambda functions'), a publish that
// reached every connection it found writes its line at Debug, which an Info
// logger leaves out; one with a failed, gone or connecting push, or a
// redelivery, is still an Info line.
func TestACleanPublishIsADebugLineWhereAsked(t *testing.T) {
	f := newFixture(t, notify.Config{})
	var logs bytes.Buffer
	f.n = notify.New(auth.NewAuthenticator(f.store), f.store, f.push, slog.New(slog.NewJSONHandler(&logs, nil)),
		notify.Config{Now: f.clock.Now, CleanPublishLevel: slog.LevelDebug})
	f.connect(t, "key-a", "live", "conn-live")
	f.connect(t, "key-a", "gone", "conn-gone")
	published := func() []string {
		var ids []string
		for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err == nil && m["msg"] == "published" {
				ids = append(ids, m["id"].(string))
			}
		}
		return ids
	}
	f.clock.Advance(time.Minute)
	for _, id := range []string{"evt-clean", "evt-clean"} { // the second: a redelivery
		if _, err := f.n.Publish(context.Background(), "owner-a", "", id, progress); err != nil {
			t.Fatal(err)
		}
	}
	f.push.SetGone("conn-gone")
	if _, err := f.n.Publish(context.Background(), "owner-a", "", "evt-gone", progress); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(published(), " "); got != "evt-clean evt-gone" {
		t.Errorf("published lines at Info: %q; want the redelivery's and the publish with a gone push", got)
	}
}
