package publishapi_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/wsnotify/wsnotify/shared/publishapi"
)

func TestPublishAnswersAfterThePushes(t *testing.T) {
	forEach(t, func(t *testing.T, r *rig) {
		a1, a2 := r.connect("acct_a", "tab-1"), r.connect("acct_a", "tab-2")
		status, ans := r.publish(`{"ownerId":"acct_a","event":` + progress("job_1", 10) + `}`)
		if status != http.StatusOK || len(ans.Results) != 1 {
			t.Fatalf("answer %d %+v", status, ans)
		}
		res := ans.Results[0]
		if res.Seq != 1 || res.Delivered != 2 || res.ID == "" || res.Duplicate {
			t.Fatalf("result %+v, want seq 1 delivered 2", res)
		}
		for _, c := range []string{a1, a2} {
			if got := r.push.Sent(c); len(got) != 1 || !strings.Contains(got[0], `"id":"`+res.ID+`","seq":1}`) {
				t.Fatalf("%s got %q", c, got)
			}
		}
		// A batch: in order, a client-addressed event has no seq, an owner
		// with no connection is no error.
		status, ans = r.publish(`{"messages":[
			{"ownerId":"acct_a","event":` + progress("job_1", 20) + `},
			{"ownerId":"acct_a","clientId":"tab-2","event":{"type":"error","error":"disk full","code":"DISK_FULL"}},
			{"ownerId":"acct_b","event":{"type":"job_complete","jobId":"job_9","status":"completed","organized":3,"failed":0}}]}`)
		if status != http.StatusOK || len(ans.Results) != 3 {
			t.Fatalf("answer %d %+v", status, ans)
		}
		want := []publishapi.Result{{Seq: 2, Delivered: 2}, {Seq: 0, Delivered: 1}, {Seq: 1, Delivered: 0}}
		for i, w := range want {
			if got := ans.Results[i]; got.Seq != w.Seq || got.Delivered != w.Delivered || got.ID == "" {
				t.Errorf("results[%d] = %+v, want %+v", i, got, w)
			}
		}
		if got := r.push.Sent(a1); len(got) != 2 {
			t.Errorf("tab-1 got %d events, want 2 (the client-addressed one is tab-2's)", len(got))
		}
		if got := r.push.Sent(a2); len(got) != 3 || !strings.Contains(got[2], `"code":"DISK_FULL"`) {
			t.Errorf("tab-2 got %q", got)
		}
	})
}

func TestEveryRefusalHasACodeAndNothingIsPublished(t *testing.T) {
	many := make([]string, 101)
	for i := range many {
		many[i] = `{"ownerId":"acct_a","event":` + progress("job_1", 1) + `}`
	}
	good := `{"ownerId":"acct_a","event":` + progress("job_1", 5) + `}`
	cases := []struct {
		name, body string
		status     int
		code, want string
	}{
		{"malformed JSON", `{"ownerId":`, 400, publishapi.CodeInvalidJSON, "malformed JSON"},
		{"not an object", `[1,2]`, 400, publishapi.CodeInvalidJSON, "JSON object"},
		{"missing ownerId", `{"event":` + progress("job_1", 5) + `}`, 400, publishapi.CodeInvalidMessage, "ownerId: missing"},
		{"bad ownerId", `{"ownerId":"a/b","event":` + progress("job_1", 5) + `}`, 400, publishapi.CodeInvalidMessage, "ownerId: must be"},
		{"unknown field", `{"ownerId":"acct_a","colour":1,"event":` + progress("job_1", 5) + `}`, 400, publishapi.CodeInvalidMessage, `unknown field "colour"`},
		{"null clientId", `{"ownerId":"acct_a","clientId":null,"event":` + progress("job_1", 5) + `}`, 400, publishapi.CodeInvalidMessage, "clientId: must not be null"},
		{"bad clientId", `{"ownerId":"acct_a","clientId":"a b","event":` + progress("job_1", 5) + `}`, 400, publishapi.CodeInvalidMessage, "clientId: "},
		{"long key", `{"ownerId":"acct_a","idempotencyKey":"` + strings.Repeat("k", 129) + `","event":` + progress("job_1", 5) + `}`, 400, publishapi.CodeInvalidMessage, "idempotencyKey: must be 1-128"},
		{"missing event", `{"messages":[{"ownerId":"acct_a"}]}`, 400, publishapi.CodeInvalidEvent, "messages[0].event: missing"},
		{"file_uploaded", `{"ownerId":"acct_a","event":{"type":"file_uploaded","fileId":"f","name":"n","size":1}}`, 400, publishapi.CodeInvalidEvent, "upload trigger"},
		{"invalid event in a batch", `{"messages":[` + good + `,` + good + `,` + good + `,{"ownerId":"acct_a","event":` + progress("job_1", 150) + `}]}`,
			400, publishapi.CodeInvalidEvent, "messages[3].event.progress: must be between 0 and 100, got 150"},
		{"wrong JSON type in an event", `{"ownerId":"acct_a","event":{"type":"job_progress","jobId":"j","progress":"5","processedCount":1,"totalCount":2}}`,
			400, publishapi.CodeInvalidEvent, `event.progress: must be a number, got JSON string`},
		{"missing event field", `{"ownerId":"acct_a","event":{"type":"job_complete","jobId":"j","organized":1,"failed":0}}`,
			400, publishapi.CodeInvalidEvent, `event.status: missing`},
		{"101 messages", `{"messages":[` + strings.Join(many, ",") + `]}`, 400, publishapi.CodeTooManyMessages, "1-100 messages, got 101"},
		{"no messages", `{"messages":[]}`, 400, publishapi.CodeTooManyMessages, "got 0"},
		{"messages not a list", `{"messages":{}}`, 400, publishapi.CodeInvalidJSON, "array"},
		{"messages beside a message", `{"messages":[` + good + `],"ownerId":"acct_a"}`, 400, publishapi.CodeInvalidJSON, "no other field"},
		{"body over 256 KB", `{"ownerId":"acct_a","event":{"type":"error","error":"` + strings.Repeat("x", publishapi.MaxBodyBytes) + `","code":"X"}}`,
			413, publishapi.CodeBodyTooLarge, "over the 262144-byte limit"},
		{"one key, two messages", `{"messages":[{"ownerId":"acct_a","idempotencyKey":"k1","event":` + progress("job_1", 5) + `},` +
			`{"ownerId":"acct_a","idempotencyKey":"k1","event":` + progress("job_1", 6) + `}]}`, 409, publishapi.CodeIdempotencyConflict, "messages[1].idempotencyKey \"k1\" names a different message in messages[0]"},
	}
	forEach(t, func(t *testing.T, r *rig) {
		conn := r.connect("acct_a", "tab-1")
		for _, c := range cases {
			status, ans := r.publish(c.body)
			if status != c.status || ans.Code != c.code || !strings.Contains(ans.Error, c.want) || strings.Contains(ans.Error, "\n") {
				t.Errorf("%s: %d %s %q, want %d %s containing %q", c.name, status, ans.Code, ans.Error, c.status, c.code, c.want)
			}
			if len(ans.Results) != 0 {
				t.Errorf("%s: results %+v", c.name, ans.Results)
			}
		}
		if sent := r.push.Sent(conn); len(sent) != 0 {
			t.Fatalf("refused requests published %q", sent)
		}
		// Nothing was numbered either: the next event is the owner's first.
		if _, ans := r.publish(good); ans.Results[0].Seq != 1 {
			t.Fatalf("after the refusals the first event got seq %d", ans.Results[0].Seq)
		}
		// Presence of an invalid owner.
		status, b := r.do("GET", "/v1/owners/a%20b/connections", nil)
		if status != 400 || !strings.Contains(string(b), publishapi.CodeInvalidOwner) {
			t.Errorf("presence of an invalid owner: %d %s", status, b)
		}
	})
}

func TestAnIdempotencyKeyPublishesOnce(t *testing.T) {
	forEach(t, func(t *testing.T, r *rig) {
		conn := r.connect("acct_a", "tab-1")
		b1 := r.connect("acct_b", "tab-1")
		msg := `{"ownerId":"acct_a","idempotencyKey":"job_1-p10","event":` + progress("job_1", 10) + `}`
		_, first := r.publish(msg)
		status, again := r.publish(msg)
		if status != 200 {
			t.Fatalf("retry answered %d %+v", status, again)
		}
		f, a := first.Results[0], again.Results[0]
		if a.ID != f.ID || a.Seq != f.Seq || !a.Duplicate || a.Delivered != 0 || f.Delivered != 1 {
			t.Fatalf("first %+v, retry %+v: want the first id and seq, a duplicate, not pushed", f, a)
		}
		if f.ID != publishapi.EventID("acct_a", "job_1-p10") {
			t.Errorf("id %s is not the key's", f.ID)
		}
		if sent := r.push.Sent(conn); len(sent) != 1 {
			t.Fatalf("the connection got %d events, want 1", len(sent))
		}
		// The same key with another event: 409, nothing pushed.
		status, ans := r.publish(`{"ownerId":"acct_a","idempotencyKey":"job_1-p10","event":` + progress("job_1", 11) + `}`)
		if status != http.StatusConflict || ans.Code != publishapi.CodeIdempotencyConflict {
			t.Fatalf("another event under the key: %d %+v", status, ans)
		}
		// The same key of another owner is another event.
		_, other := r.publish(`{"ownerId":"acct_b","idempotencyKey":"job_1-p10","event":` + progress("job_1", 10) + `}`)
		if o := other.Results[0]; o.ID == f.ID || o.Duplicate || o.Seq != 1 || o.Delivered != 1 {
			t.Fatalf("acct_b's event under acct_a's key: %+v", o)
		}
		if len(r.push.Sent(conn)) != 1 || len(r.push.Sent(b1)) != 1 {
			t.Fatalf("pushes: acct_a %d, acct_b %d, want 1 each", len(r.push.Sent(conn)), len(r.push.Sent(b1)))
		}
		// Without a key, each request is a new event.
		plain := `{"ownerId":"acct_a","event":` + progress("job_1", 12) + `}`
		_, p1 := r.publish(plain)
		_, p2 := r.publish(plain)
		if p1.Results[0].ID == p2.Results[0].ID || p2.Results[0].Seq != p1.Results[0].Seq+1 {
			t.Fatalf("two publishes without a key: %+v %+v", p1.Results, p2.Results)
		}
		// A client-addressed event is not kept: its key fixes its id, and a
		// retry pushes it again under that id.
		direct := `{"ownerId":"acct_a","clientId":"tab-1","idempotencyKey":"d1","event":{"type":"error","error":"x","code":"X"}}`
		_, d1 := r.publish(direct)
		_, d2 := r.publish(direct)
		if d1.Results[0].ID != d2.Results[0].ID || d1.Results[0].Seq != 0 || d2.Results[0].Delivered != 1 {
			t.Fatalf("client-addressed with a key: %+v %+v", d1.Results, d2.Results)
		}
	})
}

func TestARetryAfterAMidBatchFailureCompletesWithoutDuplicates(t *testing.T) {
	forEach(t, func(t *testing.T, r *rig) {
		conn := r.connect("acct_a", "tab-1")
		var msgs []string
		for i := range 5 {
			msgs = append(msgs, fmt.Sprintf(`{"ownerId":"acct_a","idempotencyKey":"step-%d","event":%s}`, i, progress("job_1", i*10)))
		}
		body := `{"messages":[` + strings.Join(msgs, ",") + `]}`
		r.store.failAt.Store(3) // the third event's history write fails
		status, ans := r.publish(body)
		if status != http.StatusInternalServerError || ans.Code != publishapi.CodeInternal || len(ans.Results) != 2 {
			t.Fatalf("mid-batch failure answered %d %+v", status, ans)
		}
		if !strings.Contains(ans.Error, "messages[2].") || strings.Contains(ans.Error, errStoreDown.Error()) {
			t.Errorf("reason %q: want the message named and no internal detail", ans.Error)
		}
		if sent := r.push.Sent(conn); len(sent) != 2 {
			t.Fatalf("before the retry the connection got %d events, want 2", len(sent))
		}
		status, retry := r.publish(body)
		if status != http.StatusOK || len(retry.Results) != 5 {
			t.Fatalf("retry answered %d %+v", status, retry)
		}
		for i, res := range retry.Results {
			if res.Seq != int64(i+1) || res.Duplicate != (i < 2) {
				t.Errorf("retry results[%d] = %+v", i, res)
			}
			if i < 2 && res.ID != ans.Results[i].ID {
				t.Errorf("results[%d] id %s, first answer %s", i, res.ID, ans.Results[i].ID)
			}
		}
		sent := r.push.Sent(conn)
		if len(sent) != 5 {
			t.Fatalf("after the retry the connection got %d events, want each of 5 once: %q", len(sent), sent)
		}
		for i, m := range sent {
			if !strings.Contains(m, fmt.Sprintf(`"seq":%d}`, i+1)) {
				t.Errorf("event %d: %s", i, m)
			}
		}
	})
}

func TestOwnersAreIsolated(t *testing.T) {
	forEach(t, func(t *testing.T, r *rig) {
		a := r.connect("acct_a", "tab-1")
		b := r.connect("acct_b", "tab-1") // the same client id under another owner
		r.publish(`{"ownerId":"acct_a","event":` + progress("job_1", 10) + `}`)
		r.publish(`{"ownerId":"acct_a","clientId":"tab-1","event":` + progress("job_1", 20) + `}`)
		if got := r.push.Sent(b); len(got) != 0 {
			t.Fatalf("acct_b's connection got acct_a's events: %q", got)
		}
		if got := r.push.Sent(a); len(got) != 2 {
			t.Fatalf("acct_a's connection got %d events, want 2", len(got))
		}
		if p := r.presence("acct_b"); p.Count != 1 || p.Clients[0].ClientID != "tab-1" {
			t.Fatalf("acct_b's presence %+v", p)
		}
	})
}

// A push that fails (after the pusher's own retries) is counted in the
// result's failed, beside the delivered ones; a publish that fails no push
// says nothing of it.
func TestAResultCountsTheConnectionsItFailedToReach(t *testing.T) {
	forEach(t, func(t *testing.T, r *rig) {
		r.connect("acct_a", "tab-1")
		broken := r.connect("acct_a", "tab-2")
		_, ans := r.publish(`{"ownerId":"acct_a","event":` + progress("job_1", 10) + `}`)
		if got := ans.Results[0]; got.Delivered != 2 || got.Failed != 0 {
			t.Fatalf("publish to two live connections: %+v", got)
		}
		r.push.Fail = func(id string) error {
			if id == broken {
				return errors.New("injected: the Management API answered 500 three times")
			}
			return nil
		}
		status, ans := r.publish(`{"ownerId":"acct_a","event":` + progress("job_1", 20) + `}`)
		if got := ans.Results[0]; status != 200 || got.Delivered != 1 || got.Failed != 1 {
			t.Fatalf("publish with one push failing: %d %+v", status, got)
		}
	})
}

func TestPresenceFollowsConnectsDisconnectsAndGoneConnections(t *testing.T) {
	forEach(t, func(t *testing.T, r *rig) {
		if p := r.presence("acct_a"); p.OwnerID != "acct_a" || p.Count != 0 || p.Clients == nil {
			t.Fatalf("presence of an owner without connections: %+v", p)
		}
		r.connect("acct_a", "tab-1")
		leaving := r.connect("acct_a", "tab-2")
		vanished := r.connect("acct_a", "phone")
		r.connect("acct_b", "tab-9")
		if p := r.presence("acct_a"); p.Count != 3 {
			t.Fatalf("after three connects: %+v", p)
		}
		if err := r.n.Disconnect(t.Context(), leaving); err != nil {
			t.Fatal(err)
		}
		// The phone's connection ends without a $disconnect: presence lists
		// it until a push meets its 410, which removes its record.
		r.push.SetGone(vanished)
		if p := r.presence("acct_a"); p.Count != 2 {
			t.Fatalf("after a disconnect: %+v", p)
		}
		_, ans := r.publish(`{"ownerId":"acct_a","event":` + progress("job_1", 10) + `}`)
		if ans.Results[0].Delivered != 1 {
			t.Fatalf("publish to one live and one gone connection: %+v", ans.Results)
		}
		status, body := r.do("GET", "/v1/owners/acct_a/connections", nil)
		p := r.presence("acct_a")
		if status != 200 || p.Count != 1 || len(p.Clients) != 1 || p.Clients[0].ClientID != "tab-1" || p.Clients[0].ConnectedAt == "" {
			t.Fatalf("after the 410: %d %+v", status, p)
		}
		for _, secret := range []string{"-conn-", "key-acct_a", "acct_b"} {
			if strings.Contains(string(body), secret) {
				t.Errorf("presence shows %q: %s", secret, body)
			}
		}
	})
}
