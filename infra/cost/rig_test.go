package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/store"
	"github.com/wsnotify/wsnotify/shared/store/dynamo"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// rig is what the measures run on: dynalite behind a metering proxy, a
// stand-in for the Management API that counts the posts, and the built
// Lambda binaries under the Runtime Interface Emulator, pointed at both.
type rig struct {
	table   string
	dynamo  string // dynalite's endpoint, unmetered: seeding
	meter   *dynamoMeter
	mgmt    *management
	metered string          // the proxy's endpoint, for the functions
	mgmtURL string          // the stand-in's endpoint with the stage
	series  map[string]bool // the custom metrics the measured invocations wrote to
	fanout  *function       // FanoutFunction, which PublishFunction hands large fan-outs to
	above   int             // PublishFunction's HandoffAbove
}

func newRig(t testing.TB, postLatency time.Duration) *rig {
	t.Helper()
	endpoint := testenv.Dynalite(t)
	const table = "cost"
	testenv.Table(t, endpoint, table)
	target, _ := url.Parse(endpoint)
	m := &dynamoMeter{proxy: httputil.NewSingleHostReverseProxy(target)}
	proxy := httptest.NewServer(m)
	t.Cleanup(proxy.Close)
	mg := &management{latency: postLatency}
	api := httptest.NewServer(mg)
	t.Cleanup(api.Close)
	return &rig{table: table, dynamo: endpoint, meter: m, mgmt: mg, metered: proxy.URL, mgmtURL: api.URL + "/prod", series: map[string]bool{}}
}

// store is the DynamoDB store on dynalite, unmetered, for seeding.
func (r *rig) store() *dynamo.Store { return dynamo.New(testenv.DynamoDB(r.dynamo), r.table) }

// seed writes n connection records of owner, old enough to be past the
// connect grace, through the store (its PutConnection), 16 at a time.
func (r *rig) seed(t testing.TB, owner string, n int) []store.Connection {
	t.Helper()
	s := r.store()
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	conns := make([]store.Connection, n)
	for i := range conns {
		conns[i] = store.Connection{OwnerID: owner, ClientID: fmt.Sprintf("tab-%06d", i),
			ConnectionID: fmt.Sprintf("%s%012d=", strings.ReplaceAll(owner, "_", ""), i), ConnectedAt: at, ExpiresAt: at.Add(3 * time.Hour)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	work := make(chan store.Connection)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 16 {
		wg.Go(func() {
			for c := range work {
				if err := s.PutConnection(ctx, c, time.Now()); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		})
	}
	for _, c := range conns {
		work <- c
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("seed %s: %v", owner, firstErr)
	}
	return conns
}

// dynamoMeter counts every request the functions make to DynamoDB, and the
// capacity units DynamoDB would charge for it: it adds
// ReturnConsumedCapacity=TOTAL to each request (dynalite checks no
// signature) and reads the ConsumedCapacity of the answer. A conditional
// write DynamoDB refuses is still charged a write unit (dynalite reports
// nothing for it): it is counted as one.
type dynamoMeter struct {
	proxy *httputil.ReverseProxy
	mu    sync.Mutex
	c     dynamoCounts
}

func (m *dynamoMeter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	if bytes.HasPrefix(body, []byte("{")) && !bytes.Contains(body, []byte(`"ReturnConsumedCapacity"`)) {
		body = append([]byte(`{"ReturnConsumedCapacity":"TOTAL",`), bytes.TrimPrefix(body, []byte("{"))...)
		if bytes.HasPrefix(body, []byte(`{"ReturnConsumedCapacity":"TOTAL",}`)) { // an empty object
			body = []byte(`{"ReturnConsumedCapacity":"TOTAL"}`)
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	rec := httptest.NewRecorder()
	m.proxy.ServeHTTP(rec, r)
	units := capacityOf(rec.Body.Bytes())
	if rec.Code != http.StatusOK && units == 0 && !readOp(op) && bytes.Contains(rec.Body.Bytes(), []byte("ConditionalCheckFailed")) {
		units = 1
	}
	m.mu.Lock()
	if m.c.Requests == nil {
		m.c.Requests = map[string]int{}
	}
	m.c.Requests[op]++
	if readOp(op) {
		m.c.RRU += units
	} else {
		m.c.WRU += units
	}
	m.mu.Unlock()
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// capacityOf sums the ConsumedCapacity of an answer: one object, or a list
// (BatchWriteItem, transactions).
func capacityOf(answer []byte) float64 {
	var one struct {
		ConsumedCapacity json.RawMessage
	}
	if json.Unmarshal(answer, &one) != nil || len(one.ConsumedCapacity) == 0 {
		return 0
	}
	type cc struct{ CapacityUnits float64 }
	var single cc
	if json.Unmarshal(one.ConsumedCapacity, &single) == nil {
		return single.CapacityUnits
	}
	var list []cc
	total := 0.0
	if json.Unmarshal(one.ConsumedCapacity, &list) == nil {
		for _, c := range list {
			total += c.CapacityUnits
		}
	}
	return total
}

// take returns the counts since the last take and resets them.
func (m *dynamoMeter) take() dynamoCounts {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.c
	m.c = dynamoCounts{}
	if c.Requests == nil {
		c.Requests = map[string]int{}
	}
	return c
}

// management stands in for the API Gateway Management API: it answers each
// post after latency (API Gateway's own time, as infra/bench assumes) and
// counts the posts, their 32 KB message units and bytes; GET (is the
// connection there) answers 200, DELETE 204.
type management struct {
	latency time.Duration
	mu      sync.Mutex
	posts   int
	units   int
	bytes   int
	other   int
}

func (m *management) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	switch r.Method {
	case http.MethodPost:
		if m.latency > 0 {
			time.Sleep(m.latency) // the service's answer time, not a wait for an event
		}
		m.mu.Lock()
		m.posts++
		m.units += messageUnits(len(body))
		m.bytes += len(body)
		m.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	case http.MethodGet:
		m.mu.Lock()
		m.other++
		m.mu.Unlock()
		_, _ = w.Write([]byte(`{"connectedAt":"2026-01-01T00:00:00Z","identity":{"sourceIp":"203.0.113.7"},"lastActiveAt":"2026-01-01T00:00:00Z"}`))
	default:
		m.mu.Lock()
		m.other++
		m.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}
}

// take returns posts, their message units and bytes since the last take.
func (m *management) take() (posts, units, bytes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	posts, units, bytes = m.posts, m.units, m.bytes
	m.posts, m.units, m.bytes, m.other = 0, 0, 0, 0
	return
}

// invokeAPI is the base URL of f's emulator's Invoke API, for a Lambda
// client's endpoint (the function's name there is "function").
func (f *function) invokeAPI() string {
	base, _ := strings.CutSuffix(f.l.URL, "/2015-03-31/functions/function/invocations")
	return base
}

// function is one Lambda binary under the emulator, with the process
// figures of its bootstrap.
type function struct {
	l        *testenv.Lambda
	name     string
	memoryMB int
}

// startFunction runs functions/<name> under the emulator at memoryMB (the
// functions size their heap by it), on one processor (GOMAXPROCS=1: a
// Lambda below 1,769 MB has less than one vCPU), against the rig.
func (r *rig) startFunction(t testing.TB, name string, memoryMB int, extra ...string) *function {
	t.Helper()
	env := append(testenv.FunctionEnv(r.table, r.metered, r.mgmtURL),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(memoryMB),
		"AWS_LAMBDA_FUNCTION_NAME="+deployedName(name),
		"METRICS_NAMESPACE=wsnotify",
		"GOMAXPROCS=1")
	env = append(env, extra...)
	return &function{l: testenv.StartLambda(t, testenv.Bootstrap(t, name), env...), name: name, memoryMB: memoryMB}
}

// deployedName is the name CloudFormation gives functions/<name>'s function
// in a stack named wsnotify: the stack, the logical id and 12 random
// characters. Every metric line carries it (the FunctionName dimension), so
// the log bytes counted are those of a deployed function's lines.
func deployedName(name string) string {
	ids := map[string]string{"connect": "ConnectFunction", "default": "DefaultFunction", "disconnect": "DisconnectFunction",
		"jobevents": "JobEventsFunction", "publish": "PublishFunction", "s3upload": "S3UploadFunction", "fanout": "FanoutFunction"}
	id, ok := ids[name]
	if !ok {
		id = name
	}
	return "wsnotify-" + id + "-Q7XK2M9PLA4R"
}

// invocation is what one invocation cost.
type invocation struct {
	Wall      time.Duration
	CPU       time.Duration
	PeakRSSMB float64
	EMFBytes  int
	LogBytes  int
	// PlatformBytes are Lambda's own lines (START, END, REPORT).
	PlatformBytes int
	Answer        []byte
	// Series are the CloudWatch metrics (name and dimension values) its
	// EMF lines wrote to.
	Series []string
}

// emfSeries returns the metrics an Embedded Metric Format line writes to,
// one per metric and dimension set: each is a custom metric CloudWatch
// bills by the hour it receives data.
func emfSeries(t testing.TB, line string) []string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(line), &doc); err != nil {
		t.Fatalf("EMF line: %v: %s", err, line)
	}
	var meta struct {
		CloudWatchMetrics []struct {
			Namespace  string
			Dimensions [][]string
			Metrics    []struct{ Name string }
		}
	}
	raw, _ := json.Marshal(doc["_aws"])
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatalf("EMF line: %v: %s", err, line)
	}
	var series []string
	for _, d := range meta.CloudWatchMetrics {
		for _, set := range d.Dimensions {
			var dims []string
			for _, name := range set {
				dims = append(dims, fmt.Sprintf("%s=%v", name, doc[name]))
			}
			for _, m := range d.Metrics {
				series = append(series, d.Namespace+" "+m.Name+" "+strings.Join(dims, ","))
			}
		}
	}
	return series
}

// invoke sends payload to the function and measures the invocation: its
// duration (the emulator's REPORT, else the time at the Invoke API), the
// bootstrap's CPU time (every thread's schedstat), its peak resident memory
// and the log bytes it wrote (the Embedded Metric Format lines apart).
func (f *function) invoke(t testing.TB, payload []byte) invocation {
	t.Helper()
	m := f.mark()
	start := time.Now()
	resp, err := http.Post(f.l.URL, "application/json", bytes.NewReader(payload))
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wall := time.Since(start)
	if resp.StatusCode != http.StatusOK || bytes.Contains(answer, []byte(`"errorType"`)) || bytes.Contains(answer, []byte(`"batchItemFailures":[{`)) {
		t.Fatalf("invoke: %s %s\n%s", resp.Status, answer, f.l.Output)
	}
	inv := f.since(t, m)
	inv.Answer = answer
	if inv.Wall == 0 {
		inv.Wall = wall
	}
	return inv
}

// mark is where a function's figures stood before an invocation.
type mark struct {
	pid  int
	cpu  time.Duration
	out0 int
}

func (f *function) mark() mark {
	pid := f.bootstrapPid()
	return mark{pid: pid, cpu: cpuTime(pid), out0: len(f.l.Output.String())}
}

// since measures the one invocation the function ran since m, whoever
// invoked it (the rig, or another function handing a fan-out to it).
func (f *function) since(t testing.TB, m mark) invocation {
	t.Helper()
	pid := m.pid
	if pid == 0 {
		pid = f.bootstrapPid()
	}
	inv := invocation{CPU: cpuTime(pid) - m.cpu, PeakRSSMB: peakRSS(pid)}
	// The log lines of this invocation: the function's, and Lambda's own.
	// The emulator writes its REPORT line as the invocation ends, at
	// about the time it answers.
	text, ok := f.l.Output.WaitFor(5*time.Second, nil, func(text string) bool {
		return len(text) > m.out0 && strings.Contains(text[m.out0:], "REPORT RequestId:")
	})
	if !ok {
		t.Fatalf("no REPORT line from the emulator within 5 s:\n%s", text[m.out0:])
	}
	for line := range strings.SplitSeq(text[m.out0:], "\n") {
		switch {
		case strings.Contains(line, `"_aws"`):
			inv.EMFBytes += len(line) + 1
			inv.Series = append(inv.Series, emfSeries(t, line)...)
		case strings.HasPrefix(line, "{"):
			inv.LogBytes += len(line) + 1
		case platformLine(line):
			inv.PlatformBytes += len(line) + 1
		}
		// The emulator's REPORT line gives the invocation's duration as
		// Lambda bills it, without the Invoke API's own time.
		if _, rest, ok := strings.Cut(line, "\tDuration: "); ok && strings.HasPrefix(line, "REPORT RequestId:") {
			if v, err := strconv.ParseFloat(strings.TrimSuffix(strings.Fields(rest)[0], " ms"), 64); err == nil && v > 0 {
				inv.Wall = time.Duration(v * float64(time.Millisecond))
			}
		}
	}
	return inv
}

// platformLine reports whether line is one of the lines Lambda itself logs
// for each invocation (START, END, REPORT), which the emulator prints as
// Lambda does; CloudWatch Logs ingests them with the function's.
func platformLine(line string) bool {
	for _, p := range []string{"START RequestId:", "END RequestId:", "REPORT RequestId:"} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// bootstrapPid finds the bootstrap, the emulator's child process; 0 until
// the first invocation starts it.
func (f *function) bootstrapPid() int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", f.l.Pid()))
	for _, task := range tasks {
		data, _ := os.ReadFile(task)
		for field := range strings.FieldsSeq(string(data)) {
			if pid, err := strconv.Atoi(field); err == nil {
				return pid
			}
		}
	}
	return 0
}

// cpuTime is the CPU time of every thread of pid (schedstat's first field:
// nanoseconds on a processor).
func cpuTime(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	stats, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var total time.Duration
	for _, s := range stats {
		data, _ := os.ReadFile(s)
		if f := strings.Fields(string(data)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			total += time.Duration(ns)
		}
	}
	return total
}

// peakRSS is pid's peak resident memory (VmHWM) in MB.
func peakRSS(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
