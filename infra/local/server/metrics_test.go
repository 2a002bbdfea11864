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

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/infra/local/server"
	"github.com/wsnotify/wsnotify/shared/metrics"
	"github.com/wsnotify/wsnotify/shared/metrics/prom"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/store"
)

// scrape reads /metrics as a scraper on this machine does, and parses it.
func (h *harness) scrape(t *testing.T) prom.Scrape {
	t.Helper()
	resp, err := http.Get(h.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	s, err := prom.ParseText(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dialStatus opens the seed's endpoint with an Origin and returns the
// handshake's status (101 when it connected; the test closes it).
func (h *harness) dialStatus(t *testing.T, rawClientID, token, origin string) int {
	t.Helper()
	c, resp, err := h.dialFrom(rawClientID, url.QueryEscape(token), origin)
	if err == nil {
		t.Cleanup(func() { _ = c.CloseNow() })
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", rawClientID, err)
	}
	return resp.StatusCode
}

// TestMetricsCountWhatLocalModeDoes moves every figure local mode can move
// through its real endpoints, and reads each back at /metrics.
func TestMetricsCountWhatLocalModeDoes(t *testing.T) {
	t.Parallel()
	cfg := twoOwners()
	cfg.OriginPatterns = []string{"https://app.example.com"}
	cfg.Notify = notify.Config{ConnectBurst: 7, ConnectRate: 0.001, MaxConnectionsPerOwner: 5}
	h := start(t, cfg)
	const site = "https://app.example.com"

	before := h.scrape(t)
	for _, f := range []metrics.Figure{metrics.ConnectsAccepted, metrics.Deliveries, metrics.LiveConnections} {
		if v, ok := before[f.Prom]; !ok || v != 0 {
			t.Fatalf("%s = %v (present %v) before anything happened, want 0", f.Prom, v, ok)
		}
	}

	// Six accepted; then one refused for each reason, forbidden three ways.
	var clients []*asyncapi.Conn
	for _, id := range []string{"a0", "a1", "a2", "a3", "a4"} {
		clients = append(clients, h.connect(t, id, keyA))
	}
	h.connect(t, "b0", keyB)
	for _, c := range []struct {
		client, token, origin string
		want                  int
	}{
		{"a5", keyA, site, http.StatusForbidden},                   // over the owner's cap of 5
		{"a6", keyA, site, http.StatusForbidden},                   // again: the seventh token of the burst
		{"a7", keyA, site, http.StatusTooManyRequests},             // the burst of 7 is spent
		{"b1", keyB, "https://evil.example", http.StatusForbidden}, // an origin off the list
		{"a%2Fb", keyB, site, http.StatusBadRequest},               // an invalid client id
		{"b1", "wsn_nobody", site, http.StatusUnauthorized},
		{"b0", keyB, site, http.StatusConflict}, // b0 is connected
	} {
		if got := h.dialStatus(t, c.client, c.token, c.origin); got != c.want {
			t.Fatalf("connect %s: %d, want %d", c.client, got, c.want)
		}
	}
	s := h.scrape(t)
	for reason, want := range map[string]float64{"forbidden": 3, "rate_limited": 1, "invalid": 1, "unauthorized": 1, "conflict": 1, "internal": 0} {
		if got := s.Get(metrics.ConnectsRefused, reason); got != want {
			t.Errorf("refused %s: %v, want %v", reason, got, want)
		}
	}
	if s.Get(metrics.ConnectsAccepted) != 6 || s.Count(metrics.OwnerConnections) != 6 || s.Get(metrics.LiveConnections) != 6 {
		t.Errorf("accepted %v, owner counts %v, live %v; want 6, 6, 6",
			s.Get(metrics.ConnectsAccepted), s.Count(metrics.OwnerConnections), s.Get(metrics.LiveConnections))
	}

	// A record whose connection is gone, older than the connect grace: the
	// first publish's push answers 410 and removes it.
	old := time.Now().Add(-time.Minute)
	ghost := store.Connection{OwnerID: ownerA, ClientID: "ghost", ConnectionID: "R2hvc3RDb25uMDE=", ConnectedAt: old, ExpiresAt: old.Add(time.Hour)}
	if err := h.srv.Store().PutConnection(context.Background(), ghost, time.Now()); err != nil {
		t.Fatal(err)
	}
	if failed := h.publishJobs(t, envelope(ownerA, "", seedJobProgress), envelope(ownerA, "", seedJobComplete)); len(failed) > 0 {
		t.Fatalf("failed: %v", failed)
	}
	h.upload(t, "uploads/"+ownerA+"/newfile.pdf", 512000)
	// The publish API: its HTTP route, and PublishFunction through the Invoke API.
	if status, body := h.callAPI(t, http.MethodPost, "/v1/publish", envelope(ownerA, "", seedError), nil); status != http.StatusOK {
		t.Fatalf("POST /v1/publish: %d %s", status, body)
	}
	invoked, _ := json.Marshal(events.APIGatewayV2HTTPRequest{RouteKey: "POST /v1/publish", RawPath: "/v1/publish",
		Body: envelope(ownerA, "", seedJobProgress)})
	var answer events.APIGatewayV2HTTPResponse
	h.invokeJSON(t, server.PublishFunction, invoked, &answer)
	if answer.StatusCode != http.StatusOK {
		t.Fatalf("PublishFunction answered %+v", answer)
	}
	size := 0
	for range 5 {
		_, data, err := readRaw(t, clients[0])
		if err != nil {
			t.Fatal(err)
		}
		size += len(data)
	}
	s = h.scrape(t)
	for _, c := range []struct {
		what      string
		got, want float64
	}{
		{"published job_progress", s.Get(metrics.EventsPublished, "job_progress"), 2},
		{"published job_complete", s.Get(metrics.EventsPublished, "job_complete"), 1},
		{"published file_uploaded", s.Get(metrics.EventsPublished, "file_uploaded"), 1},
		{"published error", s.Get(metrics.EventsPublished, "error"), 1},
		// Each by the path it came: the queue (the Invoke API of
		// JobEventsFunction), S3, the publish API (its route, PublishFunction).
		{"published by the queue", s.Path(metrics.EventsPublished, "queue"), 2},
		{"job_progress by the queue", s.Path(metrics.EventsPublished, "queue", "job_progress"), 1},
		{"job_complete by the queue", s.Path(metrics.EventsPublished, "queue", "job_complete"), 1},
		{"published by S3", s.Path(metrics.EventsPublished, "s3"), 1},
		{"file_uploaded by S3", s.Path(metrics.EventsPublished, "s3", "file_uploaded"), 1},
		{"published by the API", s.Path(metrics.EventsPublished, "api"), 2},
		{"error by the API", s.Path(metrics.EventsPublished, "api", "error"), 1},
		{"job_progress by the API", s.Path(metrics.EventsPublished, "api", "job_progress"), 1},
		{"published by no path", s.Path(metrics.EventsPublished, metrics.PathOther), 0},
		{"deliveries", s.Get(metrics.Deliveries), 25}, // 5 events to 5 connections
		{"gone", s.Get(metrics.PushesGone), 1},
		{"failed", s.Get(metrics.PushesFailed), 0},
		{"bytes", s.Get(metrics.BytesPushed), float64(5 * size)},
		{"fan-outs timed", s.Count(metrics.FanoutDuration), 5},
		// Local mode's hub never answers 429: this stays 0 here (README).
		{"throttled", s.Get(metrics.PushesThrottled), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}

	if err := clients[4].Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the disconnect to be counted", func() bool {
		s := h.scrape(t)
		return s.Get(metrics.Disconnects) == 1 && s.Get(metrics.LiveConnections) == 5
	})
}

func readRaw(t *testing.T, c *asyncapi.Conn) (websocket.MessageType, []byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return c.Read(ctx)
}

// A stage named metrics would make GET /metrics its WebSocket endpoint.
// (/metrics is on the control plane: controlRequests.)
func TestAStageNamedMetricsIsRefused(t *testing.T) {
	t.Parallel()
	if _, err := server.New(server.Config{Stage: "metrics", Logger: testLogger()}); err == nil {
		t.Fatal("stage metrics accepted: GET /metrics would be its WebSocket endpoint")
	}
}
