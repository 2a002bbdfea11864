package prom_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/metrics"
	"github.com/wsnotify/wsnotify/shared/metrics/prom"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/push/apigw"
)

var _ apigw.Metrics = (*prom.Metrics)(nil)

// scrape reads reg through the client library's HTTP handler, in the text
// format, as a scraper would.
func scrape(t *testing.T, reg *prometheus.Registry) prom.Scrape {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s, err := prom.ParseText(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newMetrics(t *testing.T, conns prom.Connections) (*prom.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := prom.New(reg, conns)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func TestEverySeriesIsServedFromTheStart(t *testing.T) {
	_, reg := newMetrics(t, func() (int64, uint64) { return 3, 1 })
	s := scrape(t, reg)
	want := map[string]float64{
		metrics.LiveConnections.Prom:    3,
		metrics.SlowConsumerCloses.Prom: 1,
	}
	for _, f := range metrics.Figures() {
		switch {
		case f.Distribution:
			want[f.Prom+"_count"] = 0
		case f.Dimension == metrics.DimReason:
			for _, r := range metrics.Reasons() {
				want[fmt.Sprintf("%s{reason=%q}", f.Prom, r)] = 0
			}
		case f.Dimension == metrics.DimType && f.ByPath:
			for _, path := range metrics.PathNames() {
				for _, typ := range metrics.EventTypes() {
					want[fmt.Sprintf("%s{path=%q,type=%q}", f.Prom, path, typ)] = 0
				}
			}
		case f.Dimension == metrics.DimType:
			for _, typ := range metrics.EventTypes() {
				want[fmt.Sprintf("%s{type=%q}", f.Prom, typ)] = 0
			}
		case !f.Local:
			want[f.Prom] = 0
		}
	}
	for key, v := range want {
		if got, ok := s[key]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", key, got, ok, v)
		}
	}
}

func TestEachFigureMovesWithWhatItCounts(t *testing.T) {
	m, reg := newMetrics(t, nil)
	m.ConnectAccepted(0)
	m.ConnectAccepted(41)
	for _, code := range []notify.Code{notify.CodeUnauthorized, notify.CodeUnauthorized, notify.CodeConflict,
		notify.CodeRateLimited, notify.CodeForbidden, notify.CodeInvalid, notify.CodeInternal, "NEW_CODE"} {
		m.ConnectRefused(code)
	}
	m.Disconnected()
	m.Published(notify.Publication{Type: event.TypeJobProgress, Path: notify.PathQueue, Bytes: 300, Duration: 3 * time.Millisecond,
		Result: notify.Result{Delivered: 3, Gone: 1, Connecting: 1, Failed: 2}})
	m.Published(notify.Publication{Type: event.TypeFileUploaded, Path: notify.PathS3, Bytes: 100, Duration: time.Millisecond,
		Result: notify.Result{Delivered: 1}})
	m.PushAttempts(2, 3)
	s := scrape(t, reg)
	for _, c := range []struct {
		got, want float64
		what      string
	}{
		{s.Get(metrics.ConnectsAccepted), 2, "accepted"},
		{s.Count(metrics.OwnerConnections), 2, "owner counts observed"},
		{s[metrics.OwnerConnections.Prom+"_sum"], 41, "owner counts' sum"},
		{s.Get(metrics.ConnectsRefused, "unauthorized"), 2, "unauthorized"},
		{s.Get(metrics.ConnectsRefused, "conflict"), 1, "conflict"},
		{s.Get(metrics.ConnectsRefused, "rate_limited"), 1, "rate_limited"},
		{s.Get(metrics.ConnectsRefused, "forbidden"), 1, "forbidden"},
		{s.Get(metrics.ConnectsRefused, "invalid"), 1, "invalid"},
		{s.Get(metrics.ConnectsRefused, "internal"), 2, "internal, an unknown code included"},
		{s.Get(metrics.Disconnects), 1, "disconnects"},
		{s.Get(metrics.EventsPublished, "job_progress"), 1, "job_progress"},
		{s.Get(metrics.EventsPublished, "file_uploaded"), 1, "file_uploaded"},
		{s.Get(metrics.EventsPublished, "error"), 0, "error"},
		{s.Path(metrics.EventsPublished, "queue", "job_progress"), 1, "job_progress by the queue"},
		{s.Path(metrics.EventsPublished, "s3", "file_uploaded"), 1, "file_uploaded by S3"},
		{s.Path(metrics.EventsPublished, "api"), 0, "by the API"},
		{s.Path(metrics.EventsPublished, "queue"), 1, "by the queue"},
		{s.Get(metrics.Deliveries), 4, "deliveries"},
		{s.Get(metrics.PushesGone), 1, "gone"},
		{s.Get(metrics.PushesFailed), 2, "failed"},
		{s.Get(metrics.BytesPushed), 400, "bytes"},
		{s.Count(metrics.FanoutDuration), 2, "fan-outs"},
		{s[metrics.FanoutDuration.Prom+"_sum"], 0.004, "fan-out seconds"},
		{s.Get(metrics.PushesThrottled), 2, "throttled"},
		{s.Get(metrics.PushRetries), 3, "retries"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if len(s) == 0 || s[`wsnotify_connects_refused_total{reason="NEW_CODE"}`] != 0 {
		t.Error("an unknown code became a series of its own")
	}
}

func TestAThrottledPushThroughTheManagementAPIClientIsCounted(t *testing.T) {
	m, reg := newMetrics(t, nil)
	var calls atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("x-amzn-ErrorType", "LimitExceededException")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"message":"Rate exceeded"}`)
		}
	}))
	defer api.Close()
	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")}
	client, err := apigw.NewClient(cfg, api.URL+"/local", 3, m, func(o *retry.StandardOptions) { o.MaxBackoff = time.Millisecond })
	if err != nil {
		t.Fatal(err)
	}
	if err := apigw.New(client, slog.New(slog.DiscardHandler)).Post(context.Background(), "TWegAcC4EowCHnA=", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	s := scrape(t, reg)
	if s.Get(metrics.PushesThrottled) != 1 || s.Get(metrics.PushRetries) != 1 {
		t.Fatalf("throttled %v, retried %v; want 1 and 1", s.Get(metrics.PushesThrottled), s.Get(metrics.PushRetries))
	}
}

func TestRegisteringTwiceIsAnError(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := prom.New(reg, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := prom.New(reg, nil); err == nil {
		t.Fatal("the same figures were registered twice")
	}
}

func TestPublishesAreCountedByPath(t *testing.T) {
	m, reg := newMetrics(t, nil)
	for _, p := range []notify.Path{notify.PathAPI, notify.PathAPI, notify.PathQueue, notify.PathS3, "", "acct_42"} {
		m.Published(notify.Publication{Type: event.TypeJobComplete, Path: p})
	}
	s := scrape(t, reg)
	for path, want := range map[string]float64{"api": 2, "queue": 1, "s3": 1, metrics.PathOther: 2} {
		if got := s[fmt.Sprintf(`%s{path=%q,type="job_complete"}`, metrics.EventsPublished.Prom, path)]; got != want {
			t.Errorf("job_complete by %s = %v, want %v", path, got, want)
		}
	}
	if got := s.Get(metrics.EventsPublished, "job_complete"); got != 6 {
		t.Errorf("job_complete over every path = %v, want 6", got)
	}
	for key := range s {
		if strings.Contains(key, "acct_42") {
			t.Errorf("an unknown path became the series %s", key)
		}
	}
}
