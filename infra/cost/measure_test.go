package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/infra/template"
	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

var (
	full = flag.Bool("cost.full", false, "measure at every size (make cost); without it, the short set make test runs")
	out  = flag.String("cost.out", "", "write the measurements as JSON to this file")
)

// sizes are what one run measures.
type sizes struct {
	connections     []int // owners' sizes for the fan-out table
	memories        []int // JobEventsFunction's MemorySize values, MB
	publishMemories []int // PublishFunction's
	jobFiles        int   // files of the job scenario
	runs            int   // invocations per small fan-out figure (median)
	// handoffAbove replaces the template's HandoffAbove when set: the
	// short set hands its 10-connection owner off, to measure that path.
	handoffAbove int
}

func (s sizes) String() string {
	return fmt.Sprintf("connections %v, memories %v (queue) and %v (publish API), a job of %d files", s.connections, s.memories, s.publishMemories, s.jobFiles)
}

var (
	shortSizes = sizes{connections: []int{1, 10}, memories: []int{512}, publishMemories: []int{128}, jobFiles: 10, runs: 1, handoffAbove: 5}
	fullSizes  = sizes{connections: []int{1, 10, 100, 1000, 10000}, memories: []int{128, 512, 1769}, publishMemories: []int{128, 512, 1769}, jobFiles: 1000, runs: 5}
)

// maxBatched is the largest owner whose publishes are also measured in
// batches of 10 events.
const maxBatched = 100

// postLatency is the Management API's answer time the stand-in gives each
// post, as infra/bench's fan-out measure assumes.
const postLatency = 20 * time.Millisecond

// TestMeasure runs the real code paths and counts what they cost: every
// figure of Measurements. make cost runs it with -cost.full and
// -cost.out; make test runs the short set and checks the counts against
// what the code paths must do.
func TestMeasure(t *testing.T) {
	sz := shortSizes
	if *full {
		sz = fullSizes
	}
	t.Logf("measuring: %v", sz)
	m := measure(t, sz)
	checkMeasurements(t, m, sz)
	if *out != "" {
		data, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*out, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// checkMeasurements holds the counts to what the code paths must do, so a
// broken meter fails make test rather than printing a cheap table.
func checkMeasurements(t *testing.T, m Measurements, sz sizes) {
	t.Helper()
	for _, f := range slices.Concat(m.Fanout, m.Publish) {
		if f.Posts != f.Connections || f.MessageUnits != f.Connections {
			t.Errorf("publish to %d connections at %d MB: %d posts, %d message units; want one each per connection", f.Connections, f.MemoryMB, f.Posts, f.MessageUnits)
		}
		if f.Dynamo.total() == 0 || f.Dynamo.WRU == 0 || f.Dynamo.RRU == 0 {
			t.Errorf("publish to %d connections: DynamoDB %+v; want the Query and the history's writes counted", f.Connections, f.Dynamo)
		}
		if f.CPUMs <= 0 || f.WallMs <= 0 || f.PeakRSSMB <= 0 {
			t.Errorf("publish to %d connections at %d MB: wall %.2f ms, CPU %.2f ms, peak %.1f MB; want all measured", f.Connections, f.MemoryMB, f.WallMs, f.CPUMs, f.PeakRSSMB)
		}
		if f.Connections <= maxBatched && f.Handoff.Invocations == 0 && (f.Batch10.Invocations != 1 || f.Batch10.Posts != 10*f.Connections) {
			t.Errorf("batch of 10 to %d connections: %d invocations, %d posts; want 1 and %d", f.Connections, f.Batch10.Invocations, f.Batch10.Posts, 10*f.Connections)
		}
		if f.EMFBytes == 0 {
			t.Errorf("publish to %d connections: no EMF bytes counted", f.Connections)
		}
	}
	if got, want := len(m.Fanout), len(sz.connections)*len(sz.memories); got != want {
		t.Errorf("%d fan-out figures, want %d", got, want)
	}
	if got, want := len(m.Publish), len(sz.connections)*len(sz.publishMemories); got != want {
		t.Errorf("%d publish API figures, want %d", got, want)
	}
	for _, f := range m.Publish {
		if handsOff := f.Connections > m.HandoffAbove; handsOff != (f.Handoff.Invocations == 1) || (handsOff && (f.Handoff.CPUMs <= 0 || f.Handoff.WallMs <= 0)) {
			t.Errorf("publish to %d connections (HandoffAbove %d): FanoutFunction invoked %d times, wall %.2f ms, CPU %.2f ms; want once, measured, above HandoffAbove, else never",
				f.Connections, m.HandoffAbove, f.Handoff.Invocations, f.Handoff.WallMs, f.Handoff.CPUMs)
		}
	}
	for _, typ := range []string{"job_progress", "job_complete", "error"} {
		if m.Events[typ].Dynamo.writes() == 0 {
			t.Errorf("%s: no DynamoDB write counted", typ)
		}
	}
	if m.Job.Raw.Posts != sz.jobFiles+1 || m.Job.Raw.Invocations != sz.jobFiles+1 {
		t.Errorf("raw job: %d posts in %d invocations, want %d each", m.Job.Raw.Posts, m.Job.Raw.Invocations, sz.jobFiles+1)
	}
	if m.Job.Coalesced.Posts >= m.Job.Raw.Posts || m.Job.Coalesced.Posts == 0 {
		t.Errorf("coalesced job: %d posts, want fewer than the raw %d", m.Job.Coalesced.Posts, m.Job.Raw.Posts)
	}
	if m.Resume.Posts == 0 || m.Resume.Dynamo.RRU == 0 {
		t.Errorf("resume: %d posts, %v read units; want the replay read and sent", m.Resume.Posts, m.Resume.Dynamo.RRU)
	}
	if m.Connect.Dynamo.writes() == 0 || m.Disconnect.Dynamo.writes() == 0 {
		t.Errorf("connect %+v, disconnect %+v: want their writes counted", m.Connect.Dynamo, m.Disconnect.Dynamo)
	}
	if m.SignedConnects.Invocations != 5 || m.SignedConnects.SecretsCalls != 1 {
		t.Errorf("%d signed-token connects read the secret %d times; want 5 connects and one read (the cache)", m.SignedConnects.Invocations, m.SignedConnects.SecretsCalls)
	}
	if len(m.MetricSeries) == 0 {
		t.Error("no custom metric seen in the functions' EMF lines")
	}
	if m.Ping.Invocations != 1 || m.Ping.Posts != 0 {
		t.Errorf("ping: %d invocations, %d posts; want 1 and none (the answer is the route response)", m.Ping.Invocations, m.Ping.Posts)
	}
}

// measure runs every scenario once on a fresh rig.
func measure(t *testing.T, sz sizes) Measurements {
	r := newRig(t, postLatency)
	m := Measurements{Date: time.Now().UTC().Format("2006-01-02"), Machine: machine(), PostLatencyMs: ms(postLatency), Events: map[string]Counts{}}

	// The fan-out table: one jobevents function per memory size, and one
	// publish function per size of its own, each warmed by a first
	// invocation (its start-up is not a publish's cost).
	fns, pubs := map[int]*function{}, map[int]*function{}
	for _, mem := range sz.memories {
		fns[mem] = r.startFunction(t, "jobevents", mem)
		fns[mem].invoke(t, sqsBatch(t, progressEvents("acct_warm", "job_warm", 1)))
	}
	// PublishFunction hands the fan-outs of owners above HandoffAbove to
	// FanoutFunction, at the template's sizes; both are measured.
	tpl, err := template.Repo()
	if err != nil {
		t.Fatal(err)
	}
	fanMem, err := intParam(tpl, "FanoutMemorySize")
	if err != nil {
		t.Fatal(err)
	}
	above, err := intParam(tpl, "HandoffAbove")
	if err != nil {
		t.Fatal(err)
	}
	if sz.handoffAbove > 0 {
		above = sz.handoffAbove
	}
	r.fanout, r.above = r.startFunction(t, "fanout", fanMem), above
	m.HandoffAbove = above
	for _, mem := range sz.publishMemories {
		pubs[mem] = r.startFunction(t, "publish", mem, "FANOUT_FUNCTION_NAME=function",
			"HANDOFF_ABOVE="+strconv.Itoa(above), "AWS_ENDPOINT_URL_LAMBDA="+r.fanout.invokeAPI())
		pubs[mem].invoke(t, functionURLPublish(t, progressEvents("acct_warm", "job_warm", 1)))
	}
	queue := func(msgs []message) []byte { return sqsBatch(t, msgs) }
	url := func(msgs []message) []byte { return functionURLPublish(t, msgs) }
	for _, n := range sz.connections {
		owner := fmt.Sprintf("acct_n%d", n)
		r.seed(t, owner, n)
		// A first publish counts the seeded records (the count's
		// correction); the measured ones are the steady state.
		fns[sz.memories[0]].invoke(t, sqsBatch(t, progressEvents(owner, "job_prime", 1)))
		runs := sz.runs
		if n > 1000 {
			runs = 1
		}
		for _, mem := range sz.memories {
			m.Fanout = append(m.Fanout, r.fanoutRun(t, fns[mem], queue, owner, n, runs))
		}
		for _, mem := range sz.publishMemories {
			m.Publish = append(m.Publish, r.fanoutRun(t, pubs[mem], url, owner, n, runs))
		}
	}

	// One event of each owner-wide type to an owner of one connection:
	// the DynamoDB writes each costs.
	fn := fns[sz.memories[len(sz.memories)-1]]
	r.seed(t, "acct_types", 1)
	fn.invoke(t, sqsBatch(t, progressEvents("acct_types", "job_prime", 1)))
	for _, ev := range []map[string]any{
		{"type": "job_progress", "jobId": "job_t", "progress": 50, "processedCount": 1, "totalCount": 2},
		{"type": "job_complete", "jobId": "job_t", "status": "completed", "organized": 2, "failed": 0},
		{"type": "error", "jobId": "job_t", "error": "one file could not be moved", "code": "ORGANIZE_FAILED"},
	} {
		c := r.run(t, fn, sqsBatch(t, []message{{owner: "acct_types", group: "job_t", event: ev}}))
		m.Events[ev["type"].(string)] = c
		t.Logf("%-12s DynamoDB %v (%.1f WRU)", ev["type"], c.Dynamo.Requests, c.Dynamo.WRU)
	}

	// A job of jobFiles files, a progress per file then its completion, to
	// an owner of one connection: in SQS batches of 10 (coalesced), and one
	// message per invocation (nothing to coalesce: the raw cost).
	r.seed(t, "acct_job", 1)
	r.seed(t, "acct_jobraw", 1)
	fn.invoke(t, sqsBatch(t, progressEvents("acct_job", "job_prime", 1)))
	fn.invoke(t, sqsBatch(t, progressEvents("acct_jobraw", "job_prime", 1)))
	m.Job.Files = sz.jobFiles
	jobMsgs := func(owner string) []message {
		msgs := progressEvents(owner, "job_big", sz.jobFiles)
		return append(msgs, message{owner: owner, group: "job_big", event: map[string]any{"type": "job_complete", "jobId": "job_big", "status": "completed", "organized": sz.jobFiles, "failed": 0}})
	}
	r.meter.take()
	r.mgmt.take()
	var runs []Counts
	for batch := range slices.Chunk(jobMsgs("acct_job"), 10) {
		runs = append(runs, r.run(t, fn, sqsBatch(t, batch)))
	}
	m.Job.Coalesced = sum(runs)
	runs = nil
	for _, msg := range jobMsgs("acct_jobraw") {
		runs = append(runs, r.run(t, fn, sqsBatch(t, []message{msg})))
	}
	m.Job.Raw = sum(runs)
	t.Logf("job of %d files: coalesced %d posts in %d invocations, raw %d in %d", sz.jobFiles, m.Job.Coalesced.Posts, m.Job.Coalesced.Invocations, m.Job.Raw.Posts, m.Job.Raw.Invocations)

	// A reconnect with resume: the client of acct_job missed the whole job
	// and reconnects (connect), then resumes from seq 0 ($default).
	key := "wsn_cost_measure_key"
	if err := r.store().PutKey(context.Background(), auth.Key{Hash: auth.Hash(key), OwnerID: "acct_job", CreatedAt: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	const mem = 128
	connect := r.startFunction(t, "connect", mem)
	def := r.startFunction(t, "default", mem)
	disconnect := r.startFunction(t, "disconnect", mem)
	connect.invoke(t, connectEvent(t, key, "warm-client", "WarmConn000001="))
	def.invoke(t, messageEvent(t, "WarmConn000001=", `{"action":"ping"}`))
	disconnect.invoke(t, disconnectEvent(t, "WarmConn000001="))
	m.Connect = r.run(t, connect, connectEvent(t, key, "resuming-client", "ResumeConn0001="))
	m.Resume = r.run(t, def, messageEvent(t, "ResumeConn0001=", `{"action":"resume","since":0}`))
	m.Ping = r.run(t, def, messageEvent(t, "ResumeConn0001=", `{"action":"ping"}`))
	m.Disconnect = r.run(t, disconnect, disconnectEvent(t, "ResumeConn0001="))
	m.SignedConnects = r.signedConnects(t, mem, 5)
	t.Logf("%d signed-token connects of one container: %d Secrets Manager reads", m.SignedConnects.Invocations, m.SignedConnects.SecretsCalls)
	m.FunctionMemoryMB = mem
	m.MetricSeries = slices.Sorted(maps.Keys(r.series))
	t.Logf("connect %v, resume %v (%d posts), ping %v, disconnect %v", m.Connect.Dynamo.Requests, m.Resume.Dynamo.Requests, m.Resume.Posts, m.Ping.Dynamo.Requests, m.Disconnect.Dynamo.Requests)
	return m
}

// fanoutRun measures fn publishing a job_progress to owner's n connections,
// one event in a payload (the median of runs), and, for an owner of up to
// maxBatched, 10 events of 10 jobs in one (none supersedes another).
// payload is the event fn takes for some messages.
func (r *rig) fanoutRun(t *testing.T, fn *function, payload func([]message) []byte, owner string, n, runs int) FanoutRun {
	t.Helper()
	r.meter.take()
	r.mgmt.take()
	handsOff := fn.name == "publish" && n > r.above
	var all []FanoutRun
	for range runs {
		sequence++
		c, fan := r.runHandingOff(t, fn, payload(progressEvents(owner, fmt.Sprintf("job_%d", sequence), 1)), handsOff)
		all = append(all, FanoutRun{Counts: c, Handoff: fan})
	}
	run := medianRun(all)
	run.Connections, run.MemoryMB = n, fn.memoryMB
	c := run.Counts
	if n <= maxBatched && !handsOff {
		var batch []message
		for range 10 {
			sequence++
			batch = append(batch, progressEvents(owner, fmt.Sprintf("job_b%d", sequence), 1)...)
		}
		run.Batch10 = r.run(t, fn, payload(batch))
	}
	t.Logf("%s to %5d at %4d MB: wall %7.2f ms, CPU %7.2f ms, peak %5.1f MB, DynamoDB %v (%.1f RRU, %.1f WRU), %d posts, log bytes %d EMF + %d + %d Lambda's; handed off: wall %.2f ms, CPU %.2f ms",
		fn.name, n, fn.memoryMB, c.WallMs, c.CPUMs, c.PeakRSSMB, c.Dynamo.Requests, c.Dynamo.RRU, c.Dynamo.WRU, c.Posts, c.EMFBytes, c.LogBytes, c.PlatformBytes,
		run.Handoff.WallMs, run.Handoff.CPUMs)
	return run
}

// signedConnects runs ConnectFunction with signed tokens on (its secret
// read from a stand-in for Secrets Manager that counts the reads) and
// connects n clients with signed tokens: what the secret's cache saves.
func (r *rig) signedConnects(t *testing.T, mem, n int) Counts {
	t.Helper()
	const name, secret = "wsnotify/token-secrets", "cost-signing-secret-0123456789-abcdefghijk"
	var reads atomic.Int64
	sm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" {
			http.Error(w, "unexpected call", http.StatusBadRequest)
			return
		}
		reads.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		out, _ := json.Marshal(map[string]string{"Name": name, "SecretString": `["` + secret + `"]`})
		_, _ = w.Write(out)
	}))
	t.Cleanup(sm.Close)
	fn := r.startFunction(t, "connect", mem, "TOKEN_SECRET_ID="+name, "TOKEN_MAX_TTL=1h", "AWS_ENDPOINT_URL_SECRETS_MANAGER="+sm.URL)
	var runs []Counts
	for i := range n {
		token, err := auth.MintToken([]byte(secret), "acct_signed", 10*time.Minute, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		c := r.run(t, fn, connectEvent(t, token, fmt.Sprintf("signed-%d", i), fmt.Sprintf("SignedConn%04d=", i)))
		if !strings.Contains(string(c.answer), `"statusCode":200`) {
			t.Fatalf("signed-token connect answered %s", c.answer)
		}
		runs = append(runs, c)
	}
	c := sum(runs)
	c.SecretsCalls = int(reads.Load())
	return c
}

// run invokes fn with payload and returns everything it cost.
func (r *rig) run(t *testing.T, fn *function, payload []byte) Counts {
	c, _ := r.runHandingOff(t, fn, payload, false)
	return c
}

// runHandingOff is run of a publish that, when handsOff, hands its fan-out
// to the rig's FanoutFunction: it returns the fan-out function's
// invocation too (its own DynamoDB requests and posts counted with the
// caller's, as one publish's).
func (r *rig) runHandingOff(t *testing.T, fn *function, payload []byte, handsOff bool) (Counts, Counts) {
	t.Helper()
	r.meter.take()
	r.mgmt.take()
	var fm mark
	if handsOff {
		fm = r.fanout.mark()
	}
	inv := fn.invoke(t, payload)
	c := counts(inv)
	var fan Counts
	if handsOff {
		fan = counts(r.fanout.since(t, fm))
		for _, s := range fan.series {
			r.series[s] = true
		}
	}
	c.Dynamo = r.meter.take()
	for _, s := range c.series {
		r.series[s] = true
	}
	c.Posts, c.MessageUnits, c.PostBytes = r.mgmt.take()
	c.answer = inv.Answer
	return c, fan
}

// counts are one invocation's figures.
func counts(inv invocation) Counts {
	return Counts{Invocations: 1, WallMs: ms(inv.Wall), CPUMs: ms(inv.CPU), PeakRSSMB: inv.PeakRSSMB,
		EMFBytes: inv.EMFBytes, LogBytes: inv.LogBytes, PlatformBytes: inv.PlatformBytes, series: inv.Series}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// medianRun is the run of the median wall time of the publishing
// function.
func medianRun(runs []FanoutRun) FanoutRun {
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b FanoutRun) int { return cmp.Compare(a.WallMs, b.WallMs) })
	return s[len(s)/2]
}

// median is the run of the median wall time.
func median(runs []Counts) Counts {
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b Counts) int {
		switch {
		case a.WallMs < b.WallMs:
			return -1
		case a.WallMs > b.WallMs:
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}

// message is one job event for the queue.
type message struct {
	owner, group string
	event        map[string]any
}

// progressEvents is n job_progress events of job, one per file.
func progressEvents(owner, job string, n int) []message {
	msgs := make([]message, n)
	for i := range msgs {
		msgs[i] = message{owner: owner, group: job, event: map[string]any{
			"type": "job_progress", "jobId": job, "progress": 100 * (i + 1) / n,
			"processedCount": i + 1, "totalCount": n, "currentFile": fmt.Sprintf("file-%05d.pdf", i+1)}}
	}
	return msgs
}

var sequence int

// sqsBatch is the SQS event the queue's event source mapping would send
// for msgs, built on the repository's sample (events/sqs-job-batch.json).
func sqsBatch(t testing.TB, msgs []message) []byte {
	t.Helper()
	sample := sampleEvent(t, "sqs-job-batch.json")
	template := sample["Records"].([]any)[0].(map[string]any)
	var records []any
	for _, msg := range msgs {
		sequence++
		rec := deepCopy(template).(map[string]any)
		rec["messageId"] = fmt.Sprintf("cost-%012d", sequence)
		body, _ := json.Marshal(map[string]any{"ownerId": msg.owner, "event": msg.event})
		rec["body"] = string(body)
		attrs := rec["attributes"].(map[string]any)
		attrs["MessageGroupId"] = msg.group
		attrs["SequenceNumber"] = fmt.Sprintf("%020d", sequence)
		attrs["MessageDeduplicationId"] = rec["messageId"]
		delete(rec, "md5OfBody")
		records = append(records, rec)
	}
	data, _ := json.Marshal(map[string]any{"Records": records})
	return data
}

// functionURLPublish is the event PublishFunction's URL sends for a POST
// /v1/publish of msgs (events/function-url-publish.json's, its body
// replaced): one message, or a batch.
func functionURLPublish(t testing.TB, msgs []message) []byte {
	t.Helper()
	ev := sampleEvent(t, "function-url-publish.json")
	var items []any
	for _, msg := range msgs {
		items = append(items, map[string]any{"ownerId": msg.owner, "event": msg.event})
	}
	var body []byte
	if len(items) == 1 {
		body, _ = json.Marshal(items[0])
	} else {
		body, _ = json.Marshal(map[string]any{"messages": items})
	}
	ev["body"] = string(body)
	ev["headers"].(map[string]any)["content-length"] = strconv.Itoa(len(body))
	data, _ := json.Marshal(ev)
	return data
}

// connectEvent is the sample $connect event for a new connection.
func connectEvent(t testing.TB, token, clientID, connectionID string) []byte {
	ev := sampleEvent(t, "connect.json")
	q := map[string]any{"client_id": clientID, "token": token}
	ev["queryStringParameters"] = q
	ev["multiValueQueryStringParameters"] = map[string]any{"client_id": []any{clientID}, "token": []any{token}}
	ev["requestContext"].(map[string]any)["connectionId"] = connectionID
	ev["requestContext"].(map[string]any)["connectedAt"] = time.Now().UnixMilli()
	data, _ := json.Marshal(ev)
	return data
}

// messageEvent is the sample $default event carrying body.
func messageEvent(t testing.TB, connectionID, body string) []byte {
	ev := sampleEvent(t, "default-ping.json")
	ev["body"] = body
	ev["requestContext"].(map[string]any)["connectionId"] = connectionID
	data, _ := json.Marshal(ev)
	return data
}

// disconnectEvent is the sample $disconnect event.
func disconnectEvent(t testing.TB, connectionID string) []byte {
	ev := sampleEvent(t, "disconnect.json")
	ev["requestContext"].(map[string]any)["connectionId"] = connectionID
	data, _ := json.Marshal(ev)
	return data
}

func sampleEvent(t testing.TB, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func deepCopy(v any) any {
	data, _ := json.Marshal(v)
	var c any
	_ = json.Unmarshal(data, &c)
	return c
}
