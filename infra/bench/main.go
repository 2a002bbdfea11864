// Command bench runs the performance measures of the issue that set them
// and writes their figures, targets and the machine they ran on as a
// markdown table into docs/performance.md, between the bench markers:
//
//   - the cloud fan-out (BenchmarkFanOut in shared/app): the functions'
//     pusher against an HTTPS stand-in answering each post after 20 ms;
//   - the DynamoDB requests and capacity of a connect and a publish
//     (BenchmarkRequests in shared/store/dynamo, on dynalite);
//   - the posts a job costs with progress superseded within a batch
//     (BenchmarkCoalescing in shared/handler);
//   - the load program at 10,000 connections of one owner (infra/loadtest);
//   - local mode's publish API, POST /v1/publish to 1 and 100 connections
//     (BenchmarkPublishAPI in infra/local/server);
//   - the Go publisher's queue path, messages/s with SendMessageBatch
//     against one SendMessage per event (BenchmarkQueue in
//     clients/go/publish, against the fake SQS endpoint);
//   - the Lambda binaries' start-up (BenchmarkColdStart in functions).
//
// Every raw output is kept under build/bench. The machine may be shared:
// each figure is a median of runs taken together, and the table says how
// loaded the machine was while it ran.
//
//	go run ./infra/bench [-count 3] [-doc docs/performance.md]
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wsnotify/wsnotify/infra/gendoc"
	"github.com/wsnotify/wsnotify/shared/notify"
)

// markers enclose the table in docs/performance.md.
var markers = gendoc.Markers{Begin: "<!-- bench:begin -->", End: "<!-- bench:end -->"}

func main() {
	count := flag.Int("count", 3, "runs of each fan-out benchmark; the table shows medians")
	doc := flag.String("doc", filepath.Join("docs", "performance.md"), "the file whose bench section is rewritten")
	out := flag.String("out", filepath.Join("build", "bench"), "folder for the raw outputs")
	flag.Parse()
	if err := run(*count, *doc, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(count int, doc, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	// The file is checked before the measuring, not after it.
	if _, _, _, err := markers.Section(doc); err != nil {
		return err
	}
	r := &runner{out: out}
	steps := []struct {
		name string
		args []string
	}{
		{"fanout", []string{"go", "test", "-run", "^$", "-bench", "FanOut", "-benchtime", "1x", "-count", strconv.Itoa(count), "-timeout", "60m", "./shared/app/"}},
		{"requests", []string{"go", "test", "-run", "^$", "-bench", "Requests", "-benchtime", "20x", "./shared/store/dynamo/"}},
		{"coalescing", []string{"go", "test", "-run", "^$", "-bench", "Coalescing", "-benchtime", "1x", "./shared/handler/"}},
		{"load", []string{"go", "run", "./infra/loadtest", "-connections", "10000", "-owners", "1", "-events", "100", "-rates", "5,10,20", "-json"}},
		{"publishapi", []string{"go", "test", "-run", "^$", "-bench", "PublishAPI", "-benchtime", "2000x", "-count", strconv.Itoa(count), "./infra/local/server/"}},
		{"publishqueue", []string{"go", "test", "-run", "^$", "-bench", "Queue", "-benchtime", "20000x", "-count", strconv.Itoa(count), "./clients/go/publish/"}},
		{"coldstart", []string{"go", "test", "-run", "^$", "-bench", "ColdStart", "-benchtime", "7x", "./functions/"}},
	}
	for _, s := range steps {
		if err := r.step(s.name, s.args...); err != nil {
			return err
		}
	}
	table, err := r.table()
	if err != nil {
		return err
	}
	fmt.Print(table)
	return markers.Rewrite(doc, table)
}

// runner runs the steps and keeps their outputs and the machine's load.
type runner struct {
	out     string
	outputs map[string][]byte
	load    map[string]string // step -> "load 1.2–3.4"
}

func (r *runner) step(name string, args ...string) error {
	if r.outputs == nil {
		r.outputs, r.load = map[string][]byte{}, map[string]string{}
	}
	fmt.Fprintf(os.Stderr, "bench: %s: %s\n", name, strings.Join(args, " "))
	before := loadAverage()
	cmd := exec.Command(args[0], args[1:]...)
	var stdout bytes.Buffer
	log, err := os.Create(filepath.Join(r.out, name+".log"))
	if err != nil {
		return err
	}
	defer log.Close()
	cmd.Stdout = io.MultiWriter(&stdout, log)
	cmd.Stderr = log
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w (see %s)", name, err, log.Name())
	}
	r.outputs[name] = stdout.Bytes()
	r.load[name] = fmt.Sprintf("%d cores, load %s–%s", runtime.NumCPU(), before, loadAverage())
	fmt.Fprintf(os.Stderr, "bench: %s took %v\n", name, time.Since(start).Round(time.Second))
	return os.WriteFile(filepath.Join(r.out, name+".txt"), stdout.Bytes(), 0o644)
}

// machine describes the machine the figures come from: its processor,
// cores, memory, system and Go.
func machine() string {
	cpu := gendoc.CPU()
	memory := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Sscanf(string(data), "MemTotal: %d kB", &kb); err == nil {
			memory = fmt.Sprintf(", %.1f GB of memory", float64(kb)/(1<<20))
		}
	}
	return fmt.Sprintf("%s, %d cores%s, %s/%s, %s", cpu, runtime.NumCPU(), memory, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// loadAverage is the machine's one-minute load average.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(data))[0]
}

// results are benchmark results: name -> unit -> values, one per run.
type results map[string]map[string][]float64

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// parseBench reads `go test -bench` output.
func parseBench(out []byte) results {
	res := results{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			if res[m[1]] == nil {
				res[m[1]] = map[string][]float64{}
			}
			res[m[1]][f[i+1]] = append(res[m[1]][f[i+1]], v)
		}
	}
	return res
}

// median returns the median of name's unit, and whether there was one.
func (r results) median(name, unit string) (float64, bool) {
	vs := slices.Clone(r[name][unit])
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	return vs[len(vs)/2], true
}

// must is median for figures the table cannot do without.
func (r results) must(name, unit string) float64 {
	v, ok := r.median(name, unit)
	if !ok {
		panic(fmt.Sprintf("no %s in the results of %s", unit, name))
	}
	return v
}

// loadReport is the part of the load program's JSON report the table uses.
type loadReport struct {
	Rate                 float64 `json:"rate"`
	DeliveriesPerSecond  float64 `json:"deliveriesPerSecond"`
	Lost                 int     `json:"lost"`
	Duplicated           int     `json:"duplicated"`
	Unexpected           int     `json:"unexpected"`
	LatencyP50           int64   `json:"latencyP50"`
	LatencyP99           int64   `json:"latencyP99"`
	RSSPerConnection     int64   `json:"rssPerConnectionBytes"`
	RSSPerConnectionPeak int64   `json:"rssPerConnectionPeakBytes"`
}

// The fan-out benchmark's sizes and concurrencies, and the one the
// functions use.
const defaultConcurrency = notify.DefaultConcurrency

var (
	fanOutSizes        = []int{100, 1000, 10000}
	fanOutConcurrences = []int{32, 64, 128, 192, 256, 512}
)

func fanOutName(client, start string, conns, concurrency int) string {
	return fmt.Sprintf("BenchmarkFanOut/client=%s/start=%s/conns=%d/concurrency=%d", client, start, conns, concurrency)
}

func (r *runner) table() (_ string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	var b strings.Builder
	row := func(figure, target, measured, machine string) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", figure, target, measured, machine)
	}
	fmt.Fprintf(&b, "Written by `make bench` on %s, on %s. Medians of runs taken together; compare within a run.\n\n",
		time.Now().UTC().Format("2006-01-02"), machine())
	b.WriteString("| figure | target | measured | machine |\n|---|---|---|---|\n")

	fan := parseBench(r.outputs["fanout"])
	secs := func(client, start string, n, c int) float64 {
		return fan.must(fanOutName(client, start, n, c), "ns/op") / 1e9
	}
	m := r.load["fanout"]
	row(fmt.Sprintf("Cloud fan-out: one publish to 10,000 connections, warm function, concurrency %d", defaultConcurrency),
		"≤ 1.5 s", fmt.Sprintf("%.2f s (SDK's default transport at 32: %.2f s, at 128: %.2f s)",
			secs("pooled", "warm", 10000, defaultConcurrency), secs("sdk-default", "warm", 10000, 32), secs("sdk-default", "warm", 10000, 128)), m)
	var ratios, pipeline []string
	for _, n := range fanOutSizes {
		ratios = append(ratios, fmt.Sprintf("%s: %.2f×", commas(n), fan.must(fanOutName("pooled", "warm", n, defaultConcurrency), "x-ideal")))
		pipeline = append(pipeline, fmt.Sprintf("%.2f×", fan.must(fanOutName("sdk-pipeline", "warm", n, defaultConcurrency), "x-ideal")))
	}
	row(fmt.Sprintf("Cloud fan-out: time over ⌈N / %d⌉ × 20 ms, warm", defaultConcurrency), "≤ 1.2×",
		strings.Join(ratios, ", ")+" (posts through the SDK's operation pipeline: "+strings.Join(pipeline, ", ")+")", m)
	row(fmt.Sprintf("Cloud fan-out: new TLS connections of a cold function's first publish to 10,000, concurrency %d", defaultConcurrency),
		fmt.Sprintf("≤ %d", defaultConcurrency), fmt.Sprintf("%s (SDK's default transport at 128: %s)",
			commas(int(fan.must(fanOutName("pooled", "cold", 10000, defaultConcurrency), "tls-conns/op"))),
			commas(int(fan.must(fanOutName("sdk-default", "cold", 10000, 128), "tls-conns/op")))), m)
	row("Cloud fan-out: that first publish, with its handshakes", "≤ 1.5 s",
		fmt.Sprintf("%.2f s", secs("pooled", "cold", 10000, defaultConcurrency)), m)
	cpu := fan.must(fanOutName("pooled", "warm", 10000, defaultConcurrency), "cpu-µs/post")
	row("Cloud fan-out: the function's CPU per post", "—",
		fmt.Sprintf("%.0f µs (through the SDK's operation pipeline: %.0f µs; 10,000 posts: %.1f CPU-s; Lambda gives one vCPU at 1,769 MB)",
			cpu, fan.must(fanOutName("sdk-pipeline", "warm", 10000, defaultConcurrency), "cpu-µs/post"), cpu*10000/1e6), m)

	req := parseBench(r.outputs["requests"])
	var connects, units, publishes []string
	for _, n := range []int{1, 100, 5000} {
		name := fmt.Sprintf("BenchmarkRequests/conns=%d", n)
		connects = append(connects, fmt.Sprintf("%g", req.must(name, "requests/connect")))
		units = append(units, fmt.Sprintf("%g", req.must(name, "units/connect")))
		publishes = append(publishes, fmt.Sprintf("%g", req.must(name, "units/publish")))
	}
	m = r.load["requests"]
	row("Connect: DynamoDB requests at 1 / 100 / 5,000 connections of the owner", "the same for every owner", strings.Join(connects, " / "), m)
	row("Connect: capacity units at 1 / 100 / 5,000 (dynalite's count)", "the same for every owner",
		strings.Join(units, " / ")+" (before: the owner's partition read on every connect, as a publish still reads it: "+strings.Join(publishes, " / ")+")", m)

	co := parseBench(r.outputs["coalescing"])
	posts, before := co.must("BenchmarkCoalescing", "posts/job"), co.must("BenchmarkCoalescing", "posts-before/job")
	row("Fewer pushes: posts of a 10,000-file job to 100 connections, SQS batches of 10", "fewer; no seq gap",
		fmt.Sprintf("%s (before: %s, %.0f%% saved)", commas(int(posts)), commas(int(before)), co.must("BenchmarkCoalescing", "saved-%")), r.load["coalescing"])

	var loads []loadReport
	dec := json.NewDecoder(bytes.NewReader(r.outputs["load"]))
	for {
		var rep loadReport
		if err := dec.Decode(&rep); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", fmt.Errorf("load report: %w", err)
		}
		loads = append(loads, rep)
	}
	at20 := slices.IndexFunc(loads, func(l loadReport) bool { return l.Rate == 20 })
	if at20 < 0 {
		return "", errors.New("the load program reported no run at 20 events/s")
	}
	l := loads[at20]
	m = r.load["load"]
	row("Local mode: resident memory per idle connection (10,000)", "≤ 20 KB", fmt.Sprintf("%.1f KB (before: 50.4)", float64(l.RSSPerConnection)/1024), m)
	row("Local mode: resident memory per connection at the peak of a broadcast to 10,000, 20 events/s", "≤ 40 KB",
		fmt.Sprintf("%.1f KB (before: about 80)", float64(l.RSSPerConnectionPeak)/1024), m)
	row("Local mode: publish-to-receipt p99 (p50), 10,000 clients, 20 events/s", "≤ 100 ms",
		fmt.Sprintf("%v (%v)", time.Duration(l.LatencyP99).Round(time.Millisecond), time.Duration(l.LatencyP50).Round(time.Millisecond)), m)
	row("Local mode: events lost, duplicated, to another owner", "0", fmt.Sprintf("%d, %d, %d", l.Lost, l.Duplicated, l.Unexpected), m)
	var sweep []string
	best := 0.0
	for _, l := range loads {
		sweep = append(sweep, fmt.Sprintf("%s/s: p99 %v", commas(int(l.DeliveriesPerSecond)), time.Duration(l.LatencyP99).Round(time.Millisecond)))
		if l.Lost == 0 && time.Duration(l.LatencyP99) <= 100*time.Millisecond {
			best = max(best, l.DeliveriesPerSecond)
		}
	}
	sustained := "none of these"
	if best > 0 {
		sustained = commas(int(best)) + "/s"
	}
	row("Local mode: largest sustained deliveries/s with p99 ≤ 100 ms (one owner of 10,000)", "report",
		sustained+" ("+strings.Join(sweep, "; ")+")", m)

	pa := parseBench(r.outputs["publishapi"])
	var api []string
	for _, n := range []struct {
		conns int
		label string
	}{{1, "1 connection"}, {100, "100 connections"}} {
		name := fmt.Sprintf("BenchmarkPublishAPI/connections=%d", n.conns)
		api = append(api, fmt.Sprintf("%s: p50 %.2f ms, p99 %.2f ms, %s requests/s", n.label,
			pa.must(name, "ms-p50"), pa.must(name, "ms-p99"), commas(int(pa.must(name, "req/s")))))
	}
	row("Local mode: POST /v1/publish of one event, answered after its pushes are queued, one request at a time", "report",
		strings.Join(api, "; "), r.load["publishapi"])

	pq := parseBench(r.outputs["publishqueue"])
	batched, single := pq.must("BenchmarkQueue/batched", "msgs/s"), pq.must("BenchmarkQueue/one_SendMessage_per_event", "msgs/s")
	row("Go publisher, job queue: messages/s through the SDK's SQS client to a fake endpoint on loopback, one producer", "report",
		fmt.Sprintf("%s/s in SendMessageBatch calls of 10; %s/s with one SendMessage per event (%.1f×)", commas(int(batched)), commas(int(single)), batched/single),
		r.load["publishqueue"])

	cs := parseBench(r.outputs["coldstart"])
	var starts []string
	for _, f := range []string{"connect", "disconnect", "default", "jobevents", "publish", "s3upload"} {
		starts = append(starts, fmt.Sprintf("%s %.0f ms", f, cs.must("BenchmarkColdStart/"+f, "ms-median-to-first-answer")))
	}
	row("Lambda start-up: process start to first answered invocation, median of 7", "report", strings.Join(starts, ", "), r.load["coldstart"])

	b.WriteString("\nThe fan-out's curve (warm function; time per publish, and over ⌈N / concurrency⌉ × 20 ms):\n\n")
	b.WriteString("| concurrency |")
	for _, n := range fanOutSizes {
		fmt.Fprintf(&b, " %s connections |", commas(n))
	}
	b.WriteString("\n|---|")
	b.WriteString(strings.Repeat("---|", len(fanOutSizes)) + "\n")
	for _, c := range fanOutConcurrences {
		fmt.Fprintf(&b, "| %d |", c)
		for _, n := range fanOutSizes {
			name := fanOutName("pooled", "warm", n, c)
			fmt.Fprintf(&b, " %s (%.2f×) |", seconds(fan.must(name, "ns/op")), fan.must(name, "x-ideal"))
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}

func seconds(ns float64) string {
	d := time.Duration(ns)
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// commas writes n with thousands separators.
func commas(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
