package handler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/wsnotify/wsnotify/shared/app"
	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/handler"
	"github.com/wsnotify/wsnotify/shared/metrics"
	"github.com/wsnotify/wsnotify/shared/metrics/emf"
	"github.com/wsnotify/wsnotify/shared/metrics/emf/emftest"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/publishapi"
	"github.com/wsnotify/wsnotify/shared/push/apigw"
	"github.com/wsnotify/wsnotify/shared/store/memory"
)

// stageAPI answers like a stage's Management API, by connection id: gone-*
// are gone (410), busy-* are throttled (429) on their first push and take
// the next, broken-* fail (500) every time, the others take every push.
type stageAPI struct {
	mu        sync.Mutex
	throttled map[string]bool
	bytes     int // bodies of the pushes answered 200
}

func (s *stageAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := strings.CutPrefix(r.URL.EscapedPath(), "/prod/@connections/")
	id, _ := url.PathUnescape(raw)
	body, _ := io.ReadAll(r.Body)
	fail := func(status int, typ string) {
		w.Header().Set("x-amzn-ErrorType", typ)
		w.WriteHeader(status)
		fmt.Fprint(w, `{"message":null}`)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case strings.HasPrefix(id, "gone-"):
		fail(http.StatusGone, "GoneException")
	case strings.HasPrefix(id, "busy-") && !s.throttled[id]:
		s.throttled[id] = true
		fail(http.StatusTooManyRequests, "LimitExceededException")
	case strings.HasPrefix(id, "broken-"):
		fail(http.StatusInternalServerError, "InternalServerErrorException")
	default:
		s.bytes += len(body)
	}
}

// function is one Lambda function as shared/app builds it, over a shared
// store and stage: its own Notifier, reporting to its own EMF recorder,
// flushed after each invocation.
type function struct {
	n   *notify.Notifier
	out *bytes.Buffer
	rec *emf.Recorder
	log *slog.Logger
}

func newFunction(t *testing.T, name string, s *memory.Store, stage string, now func() time.Time) *function {
	t.Helper()
	out := &bytes.Buffer{}
	rec, err := emf.New(out, "wsnotify-test", name)
	if err != nil {
		t.Fatal(err)
	}
	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")}
	client, err := apigw.NewClient(cfg, stage+"/prod", 2, rec, func(o *retry.StandardOptions) { o.MaxBackoff = time.Millisecond })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	n := notify.New(auth.NewAuthenticator(s), s, apigw.New(client, log), log, notify.Config{
		Metrics: rec, Now: now, ConnectBurst: 8, ConnectRate: 0.001, MaxConnectionsPerOwner: 6})
	return &function{n: n, out: out, rec: rec, log: log}
}

// invoke runs h as the Lambda runtime would, JSON in and out, and returns its
// answer and the EMF documents the invocation wrote.
func (f *function) invoke(t *testing.T, h any, ev any) ([]byte, []emftest.Doc) {
	t.Helper()
	payload, _ := json.Marshal(ev)
	f.out.Reset()
	answer, err := app.FlushAfter(lambda.NewHandler(h), f.rec, f.log).Invoke(context.Background(), payload)
	if err != nil {
		t.Fatalf("invocation: %v", err)
	}
	return answer, emftest.Parse(t, f.out.String())
}

// TestHandlersWriteEveryFigureOfTheirInvocation runs each scenario that moves
// a figure through the handlers, as the functions run them, and reads the
// figures back from the EMF lines each invocation wrote.
func TestHandlersWriteEveryFigureOfTheirInvocation(t *testing.T) {
	s := memory.New()
	for key, owner := range map[string]string{"key-42": "acct_42", "key-7": "acct_7"} {
		if err := s.PutKey(context.Background(), auth.Key{Hash: auth.Hash(key), OwnerID: owner}); err != nil {
			t.Fatal(err)
		}
	}
	api := &stageAPI{throttled: map[string]bool{}}
	stage := httptest.NewServer(api)
	defer stage.Close()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	const connectName, disconnectName, jobsName = "stack-ConnectFunction-A1", "stack-DisconnectFunction-B2", "stack-JobEventsFunction-C3"
	const uploadsName, publishName = "stack-S3UploadFunction-D4", "stack-PublishFunction-E5"
	connectFn := newFunction(t, connectName, s, stage.URL, clock)
	origins, err := handler.NewOrigins([]string{"https://app.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	connect := handler.NewConnect(connectFn.n, connectFn.log, origins).Handle

	var docs []emftest.Doc
	connectWith := func(token, client, conn, origin string, wantStatus int) {
		t.Helper()
		var req events.APIGatewayWebsocketProxyRequest
		req.QueryStringParameters = map[string]string{"token": token, "client_id": client}
		req.Headers = map[string]string{"Origin": origin}
		req.RequestContext.ConnectionID = conn
		answer, got := connectFn.invoke(t, connect, req)
		if status := fmt.Sprintf(`"statusCode":%d`, wantStatus); !strings.Contains(string(answer), status) {
			t.Fatalf("connect %s/%s answered %s, want %s", client, conn, answer, status)
		}
		if len(got) == 0 {
			t.Fatalf("connect %s/%s wrote no metrics", client, conn)
		}
		docs = append(docs, got...)
	}
	const site = "https://app.example.com"
	for _, id := range []string{"gone-1", "busy-1", "broken-1", "ok-1", "ok-2", "ok-3"} {
		connectWith("key-42", id, id, site, 200) // six accepted: the owner's cap
	}
	connectWith("key-42", "seventh", "x7", site, 403)              // forbidden: over the cap
	connectWith("key-42", "eighth", "x8", site, 403)               // forbidden again: the eighth token of the burst
	connectWith("key-42", "ninth", "x9", site, 429)                // rate limited: the burst of 8 is spent
	connectWith("key-7", "tab", "d1", "https://evil.example", 403) // forbidden: an origin off the list
	connectWith("key-7", "a/b", "d2", site, 400)                   // invalid client id
	connectWith("wsn_unknown", "tab", "d3", site, 401)             // unauthorized
	connectWith("key-7", "tab", "d4", site, 200)
	connectWith("key-7", "tab", "d5", site, 409) // conflict: tab is connected

	byConnect := func(f metrics.Figure, value ...string) emftest.Series { return emftest.Of(connectName, f, value...) }
	emftest.ExpectSums(t, docs,
		emftest.Want{Series: byConnect(metrics.ConnectsAccepted), Sum: 7},
		emftest.Want{Series: byConnect(metrics.ConnectsRefused), Sum: 7},
		emftest.Want{Series: byConnect(metrics.ConnectsRefused, "forbidden"), Sum: 3},
		emftest.Want{Series: byConnect(metrics.ConnectsRefused, "rate_limited"), Sum: 1},
		emftest.Want{Series: byConnect(metrics.ConnectsRefused, "invalid"), Sum: 1},
		emftest.Want{Series: byConnect(metrics.ConnectsRefused, "unauthorized"), Sum: 1},
		emftest.Want{Series: byConnect(metrics.ConnectsRefused, "conflict"), Sum: 1},
		emftest.Want{Series: byConnect(metrics.ConnectsRefused, "internal"), Sum: 0},
	)
	if got := fmt.Sprint(emftest.Values(docs, byConnect(metrics.OwnerConnections))); got != "[0 1 2 3 4 5 0]" {
		t.Errorf("OwnerConnections %s, want each connect's count of the owner's records [0 1 2 3 4 5 0]", got)
	}

	disconnectFn := newFunction(t, disconnectName, s, stage.URL, clock)
	disconnect := handler.NewDisconnect(disconnectFn.n, disconnectFn.log).Handle
	var dreq events.APIGatewayWebsocketProxyRequest
	dreq.RequestContext.ConnectionID = "ok-3"
	_, docs = disconnectFn.invoke(t, disconnect, dreq)
	dreq.RequestContext.ConnectionID = "never-connected"
	_, more := disconnectFn.invoke(t, disconnect, dreq)
	docs = append(docs, more...)
	// The unknown connection removed nothing.
	emftest.ExpectSums(t, docs, emftest.Want{Series: emftest.Of(disconnectName, metrics.Disconnects), Sum: 1})

	mu.Lock()
	now = now.Add(time.Minute) // past the connect grace: a 410 is a gone connection
	mu.Unlock()
	jobsFn := newFunction(t, jobsName, s, stage.URL, clock)
	jobs := handler.NewJobEvents(jobsFn.n, jobsFn.log, nil).Handle
	batch := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m1", Body: `{"ownerId":"acct_42","event":{"type":"job_progress","jobId":"job_1","progress":50,"processedCount":1,"totalCount":2,"currentFile":"a.pdf"}}`},
		{MessageId: "m2", Body: `{"ownerId":"acct_42","event":{"type":"job_complete","jobId":"job_1","status":"completed","organized":2,"failed":0}}`},
	}}
	answer, docs := jobsFn.invoke(t, jobs, batch)
	if !strings.Contains(string(answer), `"itemIdentifier":"m1"`) {
		t.Errorf("answer %s: m1 failed a push, it must be retried", answer)
	}
	byJobs := func(f metrics.Figure, value ...string) emftest.Series { return emftest.Of(jobsName, f, value...) }
	api.mu.Lock()
	delivered := api.bytes
	api.mu.Unlock()
	jobsByPath := func(f metrics.Figure, value ...string) emftest.Series {
		return emftest.OfPath(jobsName, "queue", f, value...)
	}
	emftest.ExpectSums(t, docs,
		// Published by the job queue.
		emftest.Want{Series: jobsByPath(metrics.EventsPublished), Sum: 2},
		emftest.Want{Series: jobsByPath(metrics.EventsPublished, "job_progress"), Sum: 1},
		emftest.Want{Series: jobsByPath(metrics.EventsPublished, "job_complete"), Sum: 1},
		// ok-1, ok-2 and busy-1, twice; gone-1 once, then its record is gone.
		emftest.Want{Series: byJobs(metrics.Deliveries), Sum: 6},
		emftest.Want{Series: byJobs(metrics.PushesGone), Sum: 1},
		emftest.Want{Series: byJobs(metrics.PushesFailed), Sum: 2},    // broken-1, twice
		emftest.Want{Series: byJobs(metrics.PushesThrottled), Sum: 1}, // busy-1's first attempt
		emftest.Want{Series: byJobs(metrics.PushRetries), Sum: 3},     // busy-1 once, broken-1 once a publish
		emftest.Want{Series: byJobs(metrics.BytesPushed), Sum: float64(delivered)},
	)
	if got := emftest.Values(docs, byJobs(metrics.FanoutDuration)); len(got) != 2 || got[0] <= 0 || got[1] <= 0 {
		t.Errorf("FanoutDuration %v, want one positive duration a publish", got)
	}

	// An upload, counted as S3's; a publish API request, as the API's
	// (to acct_7, whose one connection takes every push).
	uploadsFn := newFunction(t, uploadsName, s, stage.URL, clock)
	var upload handler.S3Event
	if err := json.Unmarshal([]byte(`{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},
		"object":{"key":"uploads/acct_7/a.pdf","size":10,"eTag":"e","sequencer":"01"}}}]}`), &upload); err != nil {
		t.Fatal(err)
	}
	_, upDocs := uploadsFn.invoke(t, handler.NewS3Upload(uploadsFn.n, uploadsFn.log, "").Handle, upload)
	publishFn := newFunction(t, publishName, s, stage.URL, clock)
	apiAnswer, apiDocs := publishFn.invoke(t, publishapi.New(publishFn.n, publishFn.log).HandleLambda, events.APIGatewayV2HTTPRequest{
		RouteKey: "POST /v1/publish", RawPath: "/v1/publish",
		Body: `{"messages":[{"ownerId":"acct_7","event":{"type":"error","error":"a","code":"E"}},{"ownerId":"acct_7","event":{"type":"error","error":"b","code":"E"}}]}`})
	if !strings.Contains(string(apiAnswer), `"statusCode":200`) {
		t.Errorf("the publish API answered %s", apiAnswer)
	}
	emftest.ExpectSums(t, upDocs,
		emftest.Want{Series: emftest.OfPath(uploadsName, "s3", metrics.EventsPublished, "file_uploaded"), Sum: 1},
		emftest.Want{Series: emftest.OfPath(uploadsName, "s3", metrics.EventsPublished), Sum: 1})
	emftest.ExpectSums(t, apiDocs,
		emftest.Want{Series: emftest.OfPath(publishName, "api", metrics.EventsPublished, "error"), Sum: 2},
		emftest.Want{Series: emftest.OfPath(publishName, "api", metrics.EventsPublished), Sum: 2})
	docs = append(append(docs, upDocs...), apiDocs...)
	for _, d := range docs {
		if p, ok := d.Dims[metrics.DimPath]; ok && d.Dims[metrics.DimFunction] != map[string]string{"queue": jobsName, "s3": uploadsName, "api": publishName}[p] {
			t.Errorf("%s counted publishes by the path %s", d.Dims[metrics.DimFunction], p)
		}
		for _, owner := range []string{"acct_42", "key-42", "ok-1", "job_1"} {
			if strings.Contains(fmt.Sprint(d), owner) {
				t.Errorf("%q reached the metrics: %v", owner, d)
			}
		}
	}
}
