package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

var (
	full   = flag.Bool("chaos.full", false, "run every scenario (make chaos), not only the short set")
	report = flag.String("chaos.report", "", "write the scenarios' figures as a Markdown table to this file")
)

// scenario is one fault, on while the producers publish.
type scenario struct {
	name  string
	short bool // also in the short set `go test ./...` runs
	// fault turns the fault on; raw is the scenario's raw client.
	fault func(t *testing.T, r *rig, raw *client)
	// healAfter, if set, heals the fault that long after it was turned on,
	// while the producers go on (their retries outlast it); otherwise it is
	// healed once every producer has finished.
	healAfter time.Duration
}

var scenarios = []scenario{
	{name: "DynamoDB connections reset mid-request", short: true, fault: func(t *testing.T, r *rig, _ *client) {
		r.dynamo.toxic(t, `{"type":"reset_peer","stream":"upstream","toxicity":0.3,"attributes":{"timeout":20}}`)
	}},
	{name: "Management API 500 burst", short: true, fault: func(t *testing.T, r *rig, _ *client) {
		r.manage.http.set(&faultPlan{answers: []answer{internalError}, every: 2, burst: 40})
	}},
	{name: "DynamoDB latency 50 ms", fault: func(t *testing.T, r *rig, _ *client) {
		r.dynamo.toxic(t, `{"type":"latency","attributes":{"latency":50}}`)
	}},
	{name: "DynamoDB latency 2 s", healAfter: 20 * time.Second, fault: func(t *testing.T, r *rig, _ *client) {
		r.dynamo.toxic(t, `{"type":"latency","attributes":{"latency":2000}}`)
	}},
	{name: "DynamoDB bandwidth 8 KB/s", fault: func(t *testing.T, r *rig, _ *client) {
		r.dynamo.toxic(t, `{"type":"bandwidth","attributes":{"rate":8}}`)
	}},
	{name: "DynamoDB blackhole 12 s (beyond the SDK timeouts)", healAfter: 12 * time.Second, fault: func(t *testing.T, r *rig, _ *client) {
		r.dynamo.toxic(t, `{"type":"timeout","attributes":{"timeout":0}}`)
	}},
	{name: "DynamoDB throttling and 500s (1 in 3)", fault: func(t *testing.T, r *rig, _ *client) {
		r.dynamo.http.set(&faultPlan{answers: []answer{throughputExceeded, throttling, dynamoInternal}, every: 3})
	}},
	{name: "Management API 429 burst", fault: func(t *testing.T, r *rig, _ *client) {
		r.manage.http.set(&faultPlan{answers: []answer{tooManyRequests}, every: 1, burst: 40})
	}},
	{name: "Management API latency 2 s", healAfter: 20 * time.Second, fault: func(t *testing.T, r *rig, _ *client) {
		r.manage.toxic(t, `{"type":"latency","attributes":{"latency":2000}}`)
	}},
	{name: "Management API connections reset", fault: func(t *testing.T, r *rig, _ *client) {
		r.manage.toxic(t, `{"type":"reset_peer","stream":"upstream","toxicity":0.3,"attributes":{"timeout":20}}`)
	}},
	{name: "job events binary killed mid-batch", fault: func(t *testing.T, r *rig, raw *client) {
		// Slow pushes keep a batch in flight long enough to be cut.
		r.manage.toxic(t, `{"type":"latency","attributes":{"latency":30}}`)
		r.busy.Go(func() { killMidBatch(t, r, raw, 5) })
	}},
	{name: "local mode restarted mid-stream", fault: func(t *testing.T, r *rig, raw *client) {
		r.busy.Go(func() {
			if waitRaw(raw, 8) {
				if err := r.restart(); err != nil {
					t.Error(err)
				}
			}
		})
	}},
	{name: "Management API 410 burst", fault: func(t *testing.T, r *rig, raw *client) {
		// API Gateway answers 410 for a connection that is gone: every 4th
		// push to a client module (12 in all) is answered 410 and its
		// connection closed, as it would have been. One push to the raw
		// client is answered 410 too while its connection stays open: its
		// record is removed under a live connection, whose next resume is
		// told NOT_REGISTERED and closed. A 410 removes a record only past
		// its connect grace (30 s; a younger one may be in its handshake):
		// the fault waits for the raw client's to pass.
		rec := raw.record(t, r)
		rawConn := rec.ConnectionID
		<-time.After(time.Until(rec.ConnectedAt.Add(notify.DefaultConnectGrace + time.Second)))
		var rawHit bool
		others := 0
		r.manage.http.set(&faultPlan{answers: []answer{gone}, every: 1, burst: 13,
			match: func(req *http.Request) bool { // under the injector's lock
				if req.Method != http.MethodPost {
					return false
				}
				if connectionOf(req) == rawConn {
					hit := !rawHit
					rawHit = true
					return hit
				}
				others++
				return others%4 == 0
			},
			injected: func(req *http.Request) {
				if id := connectionOf(req); id != rawConn {
					_ = r.local.Hub().CloseConnection(context.Background(), id)
				}
			}})
	}},
	{name: "dead-letter queue unreachable", fault: func(t *testing.T, r *rig, _ *client) {
		r.sqs.toxic(t, `{"type":"reset_peer","attributes":{"timeout":0}}`)
	}},
}

// Sizes of a scenario's load.
const (
	producers = 3
	// apiProducer is the producer that publishes through the publish API
	// (POST /v1/publish, answered by the PublishFunction binary, or by
	// local mode itself when embedded); the others play SQS.
	apiProducer = producers - 1
	perProducer = 10 // valid events each; one invalid record more
	batchSize   = 4
	// clients is how many client modules (Node.js) each scenario connects,
	// besides its one raw client.
	clients = 3
	// maxReceive is the source's attempts at a record before it moves it to
	// its dead-letter queue, as SQS's redrive policy does (maxReceiveCount).
	maxReceive = 5
	// redeliverWithin bounds the source's redeliveries after the heal:
	// longer than the lease of a dead publisher's claim on an event (1 min).
	redeliverWithin = 90 * time.Second
	// recoverWithin bounds the time from the heal to every client caught up.
	recoverWithin = redeliverWithin + 30*time.Second
)

// figures are a scenario's measured outcome.
type figures struct {
	published, deliveries, duplicates, gaps, retries, redriven, deadLetters, lost, injected int
	// unregistered counts the NOT_REGISTERED answers clients got.
	unregistered            int
	recovery, slowestInvoke time.Duration
}

func TestChaos(t *testing.T) {
	runScenarios(t, newRig(t), scenarios, "acct_chaos", "Publishing under faults between the function binaries and their backends (TestChaos)")
}

// embeddedScenarios fault the link between local mode, running every
// function in-process, and its own DynamoDB store.
var embeddedScenarios = []scenario{
	{name: "local mode's store: connections reset mid-request", fault: func(t *testing.T, r *rig, _ *client) {
		r.dynamo.toxic(t, `{"type":"reset_peer","stream":"upstream","toxicity":0.3,"attributes":{"timeout":20}}`)
	}},
	{name: "local mode's store: throttling and 500s (1 in 3)", fault: func(t *testing.T, r *rig, _ *client) {
		r.dynamo.http.set(&faultPlan{answers: []answer{throughputExceeded, throttling, dynamoInternal}, every: 3})
	}},
	{name: "local mode's store: latency 2 s", healAfter: 20 * time.Second, fault: func(t *testing.T, r *rig, _ *client) {
		r.dynamo.toxic(t, `{"type":"latency","attributes":{"latency":2000}}`)
	}},
	{name: "local mode's store: blackhole 12 s", healAfter: 12 * time.Second, fault: func(t *testing.T, r *rig, _ *client) {
		r.dynamo.toxic(t, `{"type":"timeout","attributes":{"timeout":0}}`)
	}},
}

// TestChaosLocalStore is local mode on its DynamoDB store (--store
// dynamodb) with faults between the two: the functions run in-process.
func TestChaosLocalStore(t *testing.T) {
	if !*full {
		t.Skip("part of make chaos (-chaos.full)")
	}
	runScenarios(t, newEmbeddedRig(t), embeddedScenarios, "acct_local", "Local mode on its DynamoDB store, faults between the two (TestChaosLocalStore)")
}

// runScenarios runs scs on r, one fresh owner each (named from prefix),
// until one fails, then checks for leaks and adds the figures to the report.
func runScenarios(t *testing.T, r *rig, scs []scenario, prefix, title string) {
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	var rows []string
	for i, sc := range scs {
		if !*full && !sc.short {
			continue
		}
		ok := t.Run(sc.name, func(t *testing.T) {
			f := runScenario(t, r, sc, fmt.Sprintf("%s_%d", prefix, i))
			rows = append(rows, fmt.Sprintf("| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s |",
				sc.name, f.published, f.deliveries, f.duplicates, f.gaps, f.unregistered, f.retries, f.redriven, f.deadLetters, f.lost, f.injected,
				f.recovery.Round(10*time.Millisecond), f.slowestInvoke.Round(10*time.Millisecond)))
			t.Logf("%+v", f)
		})
		r.heal()
		if !ok {
			break // the next scenario would start from a broken state
		}
	}
	table := strings.Join(append([]string{
		"| scenario | events | deliveries | raw duplicates | seq gaps | NOT_REGISTERED | retries | to source DLQ | to job DLQ (invalid) | lost | faults injected | recovery | slowest invocation |",
		"|---|---|---|---|---|---|---|---|---|---|---|---|---|",
	}, rows...), "\n")
	t.Logf("\n%s", table)
	checkLeaks(t, r, goroutines, fds)
	addReport(title, strings.Split(table, "\n"))
}

// runScenario connects the clients of a fresh owner, turns the fault on,
// publishes from the producers, heals the fault and checks the invariant.
func runScenario(t *testing.T, r *rig, sc scenario, owner string) figures {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	token := "wsn_" + owner + "_key"
	if err := r.store.PutKey(ctx, auth.Key{Hash: auth.Hash(token), OwnerID: owner, Name: "chaos", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	raw, err := dial(ctx, r.addr, "raw-0", token)
	if err != nil {
		t.Fatal(err)
	}
	raw.owner = owner
	var modules []*moduleClient
	for i := range clients {
		modules = append(modules, startModule(t, r.addr, fmt.Sprintf("module-%d", i), token))
	}
	// Every client is connected before the fault and the first publish.
	checkConnections(ctx, t, r, owner, clients+1)
	if r.dlq == nil {
		r.dlq = &testenv.SQS{} // embedded: no queue, nothing received
	}
	dlqBefore := len(r.dlq.Received())
	injectedBefore := r.injected()

	// Embedded local mode has no job dead-letter queue: an invalid record
	// would be retried for good.
	src := &source{addr: r.addr, owner: owner, http: &http.Client{}, invalid: !r.embedded}
	defer src.http.CloseIdleConnections()
	sc.fault(t, r, raw)
	healed := make(chan time.Time, 1)
	if sc.healAfter > 0 {
		timer := time.AfterFunc(sc.healAfter, func() { r.heal(); healed <- time.Now() })
		defer timer.Stop()
	}
	var wg sync.WaitGroup
	for p := range producers {
		if p == apiProducer {
			wg.Go(func() { src.publishAPI(ctx, p) })
			continue
		}
		wg.Go(func() { src.produce(ctx, p) })
	}
	wg.Wait()
	r.busy.Wait()
	var healedAt time.Time
	if sc.healAfter > 0 {
		healedAt = <-healed
	} else {
		r.heal()
		healedAt = time.Now()
	}

	// After the heal: the source redrives its dead-letter queue, as an
	// operator would, and every record must then be acknowledged.
	redriven := len(src.redrive) + len(src.apiRedrive)
	left := src.drain(ctx)
	left = append(left, src.drainAPI(ctx)...)
	if len(left) > 0 {
		out := ""
		if l := r.lambdas["JobEventsFunction"]; l != nil {
			out = l.Output.String()
		}
		t.Fatalf("%d records still failing after the heal (last invocation error: %v): %v\njob events emulator's output (end):\n%s", len(left), src.lastErr, left, out[max(0, len(out)-3000):])
	}
	n := producers * perProducer
	cctx, ccancel := context.WithDeadline(ctx, healedAt.Add(recoverWithin))
	defer ccancel()
	if err := raw.catchUp(cctx, n); err != nil {
		t.Fatal(err)
	}
	for _, m := range modules {
		if err := m.waitFor(cctx, n); err != nil {
			t.Fatal(err)
		}
	}
	f := figures{published: int(n), retries: src.retries, redriven: redriven, recovery: time.Since(healedAt), slowestInvoke: src.slowest,
		injected: r.injected() - injectedBefore}

	// No invocation hung: each ended by the function's deadline (Lambda's
	// timeout answer counts as ended; its records were retried).
	if f.slowestInvoke > functionTimeout+time.Second {
		t.Errorf("an invocation took %s, past the function's %s deadline", f.slowestInvoke, functionTimeout)
	}
	if src.slowestAPI > publishTimeout+time.Second {
		t.Errorf("a publish API request took %s, past PublishFunction's %s deadline", src.slowestAPI, publishTimeout)
	}
	// The invariant, on what each client module handed its application
	// and on the raw client's own ordering.
	want := src.jobs()
	raw.mu.Lock()
	if len(raw.bad) > 0 {
		t.Errorf("%s saw %v", raw.id, raw.bad)
	}
	f.duplicates = raw.raw - len(raw.delivered)
	f.gaps = raw.gaps
	f.unregistered = raw.unregistered
	f.lost = checkDelivered(t, raw.id, raw.delivered, want)
	raw.mu.Unlock()
	for _, m := range modules {
		m.mu.Lock()
		for _, code := range m.errors {
			switch code {
			case "RESUME_GAP": // a seq skipped after waiting for it
				f.gaps++
			case string(notify.CodeUnregistered):
				f.unregistered++
			default:
				t.Errorf("%s handed over an error %s", m.id, code)
			}
		}
		f.lost += checkDelivered(t, m.id, m.delivered, want)
		f.deliveries += len(m.delivered)
		m.mu.Unlock()
	}
	// The job dead-letter queue holds this scenario's invalid records, each
	// once per producer at least, with its reason, and nothing valid.
	for _, m := range r.dlq.Received()[dlqBefore:] { // none when embedded
		body, _ := m["MessageBody"].(string)
		if !strings.Contains(body, owner) {
			continue
		}
		f.deadLetters++
		if !strings.Contains(body, invalidType) {
			t.Errorf("a valid record in the job dead-letter queue: %s", body)
		}
		if attrs, _ := m["MessageAttributes"].(map[string]any); len(attrs) == 0 {
			t.Errorf("a dead letter without its reason: %v", m)
		}
	}
	if f.deadLetters < producers-1 && !r.embedded {
		t.Errorf("%d invalid records in the job dead-letter queue, want %d (one per queue producer)", f.deadLetters, producers-1)
	}
	// Connection records and counts match the live connections, once the
	// owner's publishes have run past the connect grace: a connection that
	// ended while its $disconnect could not reach DynamoDB kept its record
	// ($disconnect is best effort in API Gateway too), and a push to it,
	// answered 410, removes it, unless it is younger than the grace (a
	// connection still in its handshake answers 410 too). Probe events,
	// one every 2 s, are those publishes.
	probes := 0
	for settle := time.Now().Add(notify.DefaultConnectGrace + 15*time.Second); !connectionsMatch(ctx, r, owner, clients+1) && time.Now().Before(settle); probes++ {
		probe := events.SQSMessage{MessageId: fmt.Sprintf("%s-probe-%d", owner, probes),
			Body: fmt.Sprintf(`{"ownerId":%q,"event":{"type":"job_complete","jobId":"probe","status":"completed","organized":0,"failed":0}}`, owner)}
		if failed := src.deliver(ctx, []events.SQSMessage{probe}); len(failed) != 0 {
			t.Errorf("a probe event after the heal was not acknowledged: %v", src.lastErr)
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	if probes > 0 {
		t.Logf("%d probe events to clear the records of connections gone while DynamoDB was unreachable", probes)
	}
	checkConnections(ctx, t, r, owner, clients+1)
	raw.close()
	for _, m := range modules {
		if err := m.close(ctx); err != nil {
			t.Error(err)
		}
	}
	checkConnections(ctx, t, r, owner, 0)
	return f
}

// connectionOf returns the connection id a Management API request names
// (…/@connections/{id}, escaped: an id may hold a slash).
func connectionOf(req *http.Request) string {
	p := req.URL.EscapedPath()
	id, err := url.PathUnescape(p[strings.LastIndex(p, "/")+1:])
	if err != nil {
		return ""
	}
	return id
}

// checkDelivered checks that a client delivered each of the jobs want
// exactly once, in increasing seq, and returns how many it lacks.
func checkDelivered(t *testing.T, id string, delivered []chaosEvent, want []string) (lost int) {
	t.Helper()
	var got []string
	for i, ev := range delivered {
		if i > 0 && ev.Seq <= delivered[i-1].Seq {
			t.Errorf("%s: delivery %d has seq %d, after %d", id, i+1, ev.Seq, delivered[i-1].Seq)
		}
		got = append(got, ev.JobID)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("%s got the jobs %v, want each of %v once", id, got, want)
	}
	return max(0, len(want)-len(slices.Compact(got)))
}

// checkConnections waits until the owner's connection records, its
// connection count and local mode's live connections all equal n.
func checkConnections(ctx context.Context, t *testing.T, r *rig, owner string, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		records, count, live, err := connectionCounts(ctx, r, owner)
		if err == nil && records == n && count == n && live == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d connections of %s: records %d, count %d, live %d (%v)", n, owner, records, count, live, err)
		}
	}
}

// connectionsMatch reports whether owner's records, count and live
// connections are n each, now.
func connectionsMatch(ctx context.Context, r *rig, owner string, n int) bool {
	records, count, live, err := connectionCounts(ctx, r, owner)
	return err == nil && records == n && count == n && live == n
}

// connectionCounts reads owner's connection records and count from the
// table, and local mode's live connections.
func connectionCounts(ctx context.Context, r *rig, owner string) (records, count, live int, err error) {
	live = r.local.Hub().Len()
	list, err := r.store.ListConnections(ctx, owner, time.Now())
	if err != nil {
		return 0, 0, live, err
	}
	count, err = r.store.ConnectionCount(ctx, owner)
	return len(list), count, live, err
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("count open files: %v", err)
	}
	return len(entries)
}

// invalidType is the event type of the record each producer sends that can
// never succeed: it belongs in the job dead-letter queue.
const invalidType = "job_exploded"

// source plays SQS in front of the job events function: it delivers
// batches, redelivers the records reported failed (or all of a batch whose
// invocation failed) up to maxReceive times, and then keeps them in its own
// dead-letter queue for a redrive.
type source struct {
	addr, owner string
	http        *http.Client
	invalid     bool // each producer also sends a record that can never succeed

	mu      sync.Mutex
	acked   map[string]string // message id → job id of the acknowledged valid records
	retries int
	redrive []events.SQSMessage
	// apiRedrive holds the publish API batches not answered 200 within
	// maxReceive attempts, sent again (same keys) after the heal.
	apiRedrive [][]apiMessage
	slowest    time.Duration // the slowest invocation of the job events function
	slowestAPI time.Duration // the slowest publish API request
	lastErr    error         // the last failed invocation's error
}

// apiMessage is one message of a POST /v1/publish batch.
type apiMessage struct {
	OwnerID        string          `json:"ownerId"`
	IdempotencyKey string          `json:"idempotencyKey"`
	Event          json.RawMessage `json:"event"`
}

// publishAPI publishes producer p's events through the publish API in
// batches, each message with its idempotency key: a batch not answered 200
// is sent again as it was (the keys publish each event once however often
// it is sent), up to maxReceive times, then kept for after the heal. The
// API validates a batch whole, so this producer sends no invalid event.
func (s *source) publishAPI(ctx context.Context, p int) {
	var msgs []apiMessage
	for i := range perProducer {
		job := fmt.Sprintf("job-%d-%02d", p, i)
		msgs = append(msgs, apiMessage{OwnerID: s.owner, IdempotencyKey: s.owner + "-" + job,
			Event: json.RawMessage(fmt.Sprintf(`{"type":"job_progress","jobId":%q,"progress":50,"processedCount":1,"totalCount":2}`, job))})
	}
	for len(msgs) > 0 {
		batch := msgs[:min(batchSize, len(msgs))]
		msgs = msgs[len(batch):]
		sent := false
		for attempt := 1; attempt <= maxReceive && !sent; attempt++ {
			sent = s.post(ctx, batch)
		}
		if !sent {
			s.mu.Lock()
			s.apiRedrive = append(s.apiRedrive, batch)
			s.mu.Unlock()
		}
	}
}

// drainAPI sends the kept batches again, once a second, until each is
// answered 200 or redeliverWithin has passed, and returns the keys of the
// messages still not published.
func (s *source) drainAPI(ctx context.Context) []string {
	s.mu.Lock()
	batches := s.apiRedrive
	s.apiRedrive = nil
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, redeliverWithin)
	defer cancel()
	var left []string
	for _, batch := range batches {
		for !s.post(ctx, batch) && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		if ctx.Err() != nil {
			for _, m := range batch {
				left = append(left, m.IdempotencyKey)
			}
		}
	}
	return left
}

// post sends batch to POST /v1/publish and reports whether it was answered
// 200 (every message published, or found published before by its key),
// counting the messages of a batch that was not as retries.
func (s *source) post(ctx context.Context, batch []apiMessage) bool {
	body, _ := json.Marshal(map[string]any{"messages": batch})
	ctx, cancel := context.WithTimeout(ctx, publishTimeout+5*time.Second)
	defer cancel()
	start := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.addr+"/v1/publish", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	var answer []byte
	if err == nil {
		answer, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("publish API: %d %s", resp.StatusCode, answer)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slowestAPI = max(s.slowestAPI, time.Since(start))
	if err != nil {
		s.lastErr = err
		s.retries += len(batch)
		return false
	}
	if s.acked == nil {
		s.acked = map[string]string{}
	}
	for _, m := range batch {
		s.acked["api-"+m.IdempotencyKey] = jobOf(fmt.Sprintf(`{"event":%s}`, m.Event))
	}
	return true
}

// produce publishes producer p's records in batches.
func (s *source) produce(ctx context.Context, p int) {
	var recs []events.SQSMessage
	for i := range perProducer {
		job := fmt.Sprintf("job-%d-%02d", p, i)
		recs = append(recs, events.SQSMessage{MessageId: fmt.Sprintf("%s-p%d-%d", s.owner, p, i),
			Body: fmt.Sprintf(`{"ownerId":%q,"event":{"type":"job_progress","jobId":%q,"progress":50,"processedCount":1,"totalCount":2}}`, s.owner, job)})
	}
	if s.invalid {
		recs = append(recs, events.SQSMessage{MessageId: fmt.Sprintf("%s-p%d-invalid", s.owner, p),
			Body: fmt.Sprintf(`{"ownerId":%q,"event":{"type":%q,"jobId":"x"}}`, s.owner, invalidType)})
	}
	for len(recs) > 0 {
		batch := recs[:min(batchSize, len(recs))]
		recs = recs[len(batch):]
		for attempt := 1; len(batch) > 0; attempt++ {
			failed := s.deliver(ctx, batch)
			if len(failed) > 0 && attempt == maxReceive {
				s.mu.Lock()
				s.redrive = append(s.redrive, failed...)
				s.mu.Unlock()
				break
			}
			batch = failed
		}
	}
}

// drain redelivers the source's dead-letter queue, as an operator's redrive
// does once the fault is healed, and then redelivers what still fails once a
// second, as SQS does after each visibility timeout, until redeliverWithin has
// passed. It returns the records still not acknowledged. A record whose
// publisher died while numbering it waits for its claim to lapse (a minute,
// within SQS's 60 s visibility timeout times maxReceiveCount).
func (s *source) drain(ctx context.Context) []string {
	s.mu.Lock()
	batch := s.redrive
	s.redrive = nil
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, redeliverWithin)
	defer cancel()
	visibility := time.NewTicker(time.Second)
	defer visibility.Stop()
	for len(batch) > 0 && ctx.Err() == nil {
		if batch = s.deliver(ctx, batch); len(batch) > 0 {
			select {
			case <-ctx.Done():
			case <-visibility.C:
			}
		}
	}
	var ids []string
	for _, r := range batch {
		ids = append(ids, r.MessageId)
	}
	return ids
}

// deliver invokes the job events function with batch through local mode's
// Invoke API and returns the records not acknowledged.
func (s *source) deliver(ctx context.Context, batch []events.SQSMessage) []events.SQSMessage {
	payload, _ := json.Marshal(events.SQSEvent{Records: batch})
	start := time.Now()
	failedIDs, err := s.invoke(ctx, payload)
	took := time.Since(start)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slowest = max(s.slowest, took)
	if err != nil {
		s.lastErr = err
	}
	var failed []events.SQSMessage
	for _, rec := range batch {
		if err != nil || failedIDs[rec.MessageId] {
			failed = append(failed, rec)
			continue
		}
		if s.acked == nil {
			s.acked = map[string]string{}
		}
		if job := jobOf(rec.Body); job != "x" {
			s.acked[rec.MessageId] = job
		}
	}
	s.retries += len(failed)
	return failed
}

func (s *source) invoke(ctx context.Context, payload []byte) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, functionTimeout+5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.addr+"/2015-03-31/functions/JobEventsFunction/invocations", bytes.NewReader(payload))
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Function-Error") != "" {
		return nil, fmt.Errorf("invoke: %d %s", resp.StatusCode, body)
	}
	var out events.SQSEventResponse
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("invoke answered %s: %w", body, err)
	}
	if out.BatchItemFailures == nil {
		return nil, errors.New("invoke answered no batchItemFailures")
	}
	failed := map[string]bool{}
	for _, f := range out.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	return failed, nil
}

// jobs returns the job ids of the acknowledged valid records, sorted.
func (s *source) jobs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var jobs []string
	for _, j := range s.acked {
		jobs = append(jobs, j)
	}
	slices.Sort(jobs)
	return jobs
}

func jobOf(body string) string {
	var v struct {
		Event struct {
			JobID string `json:"jobId"`
		} `json:"event"`
	}
	_ = json.Unmarshal([]byte(body), &v)
	return v.Event.JobID
}

// Leak margins: what a pool of idle connections may keep once everything
// else has stopped (local mode's DynamoDB client keeps up to 10 idle
// connections, each a descriptor and two goroutines).
const (
	spareGoroutines = 20
	spareFDs        = 10
)

// checkLeaks stops the binaries (ending their pooled connections through
// the proxies) and local mode, and then waits for this process's goroutines
// and open descriptors to come back to what they were before the scenarios:
// the proxies, the fault injectors, local mode's hub and the clients must
// let go of everything a scenario made.
func checkLeaks(t *testing.T, r *rig, goroutines, fds int) {
	t.Helper()
	for _, l := range r.lambdas {
		l.Stop()
	}
	if err := r.stop(); err != nil {
		t.Errorf("local mode's shutdown: %v", err)
	}
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for runtime.NumGoroutine() > goroutines+spareGoroutines || openFDs(t) > fds+spareFDs {
		select {
		case <-deadline.C:
			buf := make([]byte, 1<<20)
			t.Fatalf("leak: %d goroutines (%d before the scenarios), %d open files (%d before):\n%s",
				runtime.NumGoroutine(), goroutines, openFDs(t), fds, buf[:runtime.Stack(buf, true)])
		case <-tick.C:
		}
	}
	t.Logf("after the scenarios: %d goroutines (%d before), %d open files (%d before)", runtime.NumGoroutine(), goroutines, openFDs(t), fds)
}

// killMidBatch kills the job events bootstrap (SIGKILL, as Lambda ends a
// crashed or out-of-memory function) once c has received after events: the
// batch in flight fails as a whole, and the emulator starts the bootstrap
// again for the next invocation.
func killMidBatch(t *testing.T, r *rig, c *client, after int) {
	if !waitRaw(c, after) {
		return
	}
	pid := r.lambdas["JobEventsFunction"].Pid()
	// The emulator starts the bootstrap from any of its threads: each
	// thread lists the children it started.
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var kids []string
	for _, task := range tasks {
		b, _ := os.ReadFile(task)
		kids = append(kids, strings.Fields(string(b))...)
	}
	if len(kids) == 0 {
		t.Errorf("no job events bootstrap under the emulator (pid %d)", pid)
		return
	}
	for _, kid := range kids {
		var p int
		fmt.Sscan(kid, &p)
		if err := syscall.Kill(p, syscall.SIGKILL); err != nil {
			t.Errorf("kill the bootstrap %d: %v", p, err)
		}
	}
	r.kills.Add(1)
}

// waitRaw waits until c has received n events, or its connection has ended
// for good (false).
func waitRaw(c *client, n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.raw < n && c.err == nil {
		changed := c.changed
		c.mu.Unlock()
		<-changed
		c.mu.Lock()
	}
	return c.err == nil
}
