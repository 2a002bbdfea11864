package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/infra/local/server"
	"github.com/wsnotify/wsnotify/infra/openapi"
	"github.com/wsnotify/wsnotify/shared/publishapi"
	"github.com/wsnotify/wsnotify/shared/store"
	"github.com/wsnotify/wsnotify/shared/store/memory"
)

// callAPI sends a publish API request to local mode and holds the answer to
// docs/openapi.yaml.
func (h *harness) callAPI(t *testing.T, method, path, body string, header http.Header) (int, string) {
	t.Helper()
	status, _, answer := h.post(t, method, path, body, "", header)
	if err := openapi.CheckResponse(method, path, status, []byte(answer)); err != nil {
		t.Errorf("%s %s: %v", method, path, err)
	}
	return status, answer
}

// TestThePublishAPIReachesTheOwnersClients publishes through local mode's
// POST /v1/publish to real WebSocket clients: the answer names what each
// client received, another owner's client gets nothing, presence follows
// the connections.
func TestThePublishAPIReachesTheOwnersClients(t *testing.T) {
	t.Parallel()
	h := start(t, twoOwners())
	a1 := h.connect(t, "a1", keyA)
	a2 := h.connect(t, "a2", keyA)
	b1 := h.connect(t, "b1", keyB)

	status, body := h.callAPI(t, http.MethodPost, "/v1/publish", `{"messages":[`+
		envelope(ownerA, "", seedJobProgress)+`,`+
		strings.Replace(envelope(ownerA, "a2", seedError), `{"ownerId"`, `{"idempotencyKey":"job_123-denied","ownerId"`, 1)+`]}`, nil)
	var ans struct{ Results []publishapi.Result }
	if status != http.StatusOK || json.Unmarshal([]byte(body), &ans) != nil || len(ans.Results) != 2 {
		t.Fatalf("publish answered %d %s", status, body)
	}
	owned, direct := ans.Results[0], ans.Results[1]
	if owned.Delivered != 2 || owned.Seq != 1 || direct.Delivered != 1 || direct.Seq != 0 {
		t.Fatalf("results %+v", ans.Results)
	}
	for _, c := range []struct {
		name string
		got  map[string]any
	}{{"a1", read(t, a1)}, {"a2", read(t, a2)}} {
		if c.got["id"] != owned.ID || c.got["seq"] != float64(1) {
			t.Fatalf("%s received %v, the answer said id %s seq 1", c.name, c.got, owned.ID)
		}
	}
	if got := read(t, a2); got["id"] != direct.ID || got["code"] != "PERMISSION_ERROR" {
		t.Fatalf("a2 received %v, want the error addressed to it", got)
	}
	// b1 gets its own owner's next event, and nothing of acct_A's before it.
	if status, body := h.callAPI(t, http.MethodPost, "/v1/publish", envelope(ownerB, "", seedJobComplete), nil); status != http.StatusOK {
		t.Fatalf("publish to %s: %d %s", ownerB, status, body)
	}
	nextIs(t, b1, seedJobComplete)

	presence := func(owner string) (n int, clients string) {
		status, body := h.callAPI(t, http.MethodGet, "/v1/owners/"+owner+"/connections", "", nil)
		var p struct {
			Count   int
			Clients []publishapi.Client
		}
		if status != http.StatusOK || json.Unmarshal([]byte(body), &p) != nil {
			t.Fatalf("presence of %s: %d %s", owner, status, body)
		}
		for _, c := range p.Clients {
			clients += c.ClientID + " "
		}
		return p.Count, clients
	}
	if n, clients := presence(ownerA); n != 2 || !strings.Contains(clients, "a1") || !strings.Contains(clients, "a2") {
		t.Fatalf("presence of %s: %d %s", ownerA, n, clients)
	}
	_ = a2.CloseNow()
	eventually(t, "a2's disconnect to leave presence", func() bool {
		n, _ := presence(ownerA)
		return n == 1
	})
	if n, clients := presence(ownerB); n != 1 || clients != "b1 " {
		t.Fatalf("presence of %s: %d %s", ownerB, n, clients)
	}
	// A refusal publishes nothing: a1's next event is the one after it.
	status, body = h.callAPI(t, http.MethodPost, "/v1/publish", `{"messages":[`+envelope(ownerA, "", seedJobComplete)+`,{"ownerId":"acct_A"}]}`, nil)
	if status != http.StatusBadRequest || !strings.Contains(body, `"code":"INVALID_EVENT"`) || !strings.Contains(body, "messages[1].event: missing") {
		t.Fatalf("an invalid batch: %d %s", status, body)
	}
	h.callAPI(t, http.MethodPost, "/v1/publish", envelope(ownerA, "", seedJobProgress), nil)
	if got := read(t, a1); got["seq"] != float64(2) || got["type"] != "job_progress" {
		t.Fatalf("a1 received %v after the refused batch, want seq 2's job_progress", got)
	}
}

// TestThePublishAPITakesTheControlToken: with a control token, the publish
// API answers a request that carries it (its refusal without is in
// TestTheControlTokenGuardsEveryControlPlaneRequest).
func TestThePublishAPITakesTheControlToken(t *testing.T) {
	t.Parallel()
	cfg := twoOwners()
	cfg.ControlToken = controlToken
	h := start(t, cfg)
	a := h.connect(t, "a", keyA)
	bearer := http.Header{"Authorization": {"Bearer " + controlToken}}
	status, body := h.callAPI(t, http.MethodPost, "/v1/publish", envelope(ownerA, "", seedJobProgress), bearer)
	if status != http.StatusOK || !strings.Contains(body, `"delivered":1`) {
		t.Fatalf("publish with the token: %d %s", status, body)
	}
	nextIs(t, a, seedJobProgress)
	status, body = h.callAPI(t, http.MethodGet, fmt.Sprintf("/v1/owners/%s/connections", ownerA), "", bearer)
	if status != http.StatusOK || !strings.Contains(body, `"count":1`) {
		t.Fatalf("presence with the token: %d %s", status, body)
	}
}

// stallingStore is the memory store whose history never answers a write:
// each RecordEvent waits until its context ends, as a DynamoDB that has
// gone silent does until the SDK's deadline.
type stallingStore struct{ *memory.Store }

func (s stallingStore) RecordEvent(ctx context.Context, e store.Event, keep int, now time.Time) (store.Event, bool, error) {
	<-ctx.Done()
	return store.Event{}, false, ctx.Err()
}

// TestThePublishAPIServedHereEndsAtPublishFunctionsTimeout: served in local
// mode's process, a publish is bounded by PublishFunction's Timeout, as
// Lambda bounds the function in the cloud: a store that never answers ends
// it with a 500 in about that time, not a request that waits for good
// (found by make chaos, 2 s of latency on local mode's store).
func TestThePublishAPIServedHereEndsAtPublishFunctionsTimeout(t *testing.T) {
	t.Parallel()
	cfg := twoOwners()
	cfg.Store = stallingStore{memory.New()}
	cfg.FunctionTimeouts = map[string]time.Duration{server.PublishFunction: 300 * time.Millisecond}
	h := start(t, cfg)
	start := time.Now()
	status, answer := h.callAPI(t, http.MethodPost, "/v1/publish", envelope(ownerA, "", seedJobComplete), nil)
	took := time.Since(start)
	if status != http.StatusInternalServerError || !strings.Contains(answer, publishapi.CodeInternal) {
		t.Fatalf("answered %d %s, want 500 %s", status, answer, publishapi.CodeInternal)
	}
	if took > 5*time.Second {
		t.Fatalf("answered after %s, want about the function's 300 ms", took)
	}
}
