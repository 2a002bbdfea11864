// Command loadtest measures local mode under many connections: it starts the
// local mode binary as its own process, opens N WebSocket connections across
// several owners, publishes job events through the Lambda Invoke API at a
// given rate, and reports what arrived: lost (must be 0), duplicated,
// publish-to-receipt latency and the server's memory per connection, idle
// and at its peak while the events go out. At the end it reads local mode's
// /metrics and sets the server's figures beside its own counts: they must
// agree.
//
//	go run ./infra/loadtest -connections 10000 -owners 100 -events 300 -rate 50
//	go run ./infra/loadtest -connections 10000 -owners 1 -events 200 -rate 20   # a broadcast
//	go run ./infra/loadtest -connections 10000 -owners 1 -events 200 -rates 10,20,40
//	go run ./infra/loadtest -resume-events 1000 -connections 200   # 200 clients resume 1,000 events at once
//
// With -rates it runs once per rate and reports the largest rate, in
// deliveries per second, at which nothing was lost and p99 stayed within
// -p99 (100 ms).
//
// Traffic stays on the loopback interface; every loop is bounded in count
// and time.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/metrics"
	"github.com/wsnotify/wsnotify/shared/metrics/prom"
	"github.com/wsnotify/wsnotify/shared/notify"
)

// Config is one load run.
type Config struct {
	Server      string        // path of the local mode binary
	Port        int           // loopback port for it
	Connections int           // WebSocket connections in all
	Owners      int           // spread evenly over this many owners
	Events      int           // job events to publish
	Rate        float64       // events per second
	Dialers     int           // connections opened in parallel
	Settle      time.Duration // how long to wait for the last deliveries
	Log         io.Writer     // the build's output and the server's warnings and errors go here
	ServerInfo  bool          // also pass on the server's INFO and DEBUG log lines
}

// Report is what one run measured.
type Report struct {
	Connections        int           `json:"connections"`
	Owners             int           `json:"owners"`
	ConnectTime        time.Duration `json:"connectTime"`
	EventsPublished    int           `json:"eventsPublished"`
	EventsAccepted     int           `json:"eventsAccepted"`
	DeliveriesExpected int           `json:"deliveriesExpected"`
	DeliveriesReceived int           `json:"deliveriesReceived"`
	Lost               int           `json:"lost"`
	Duplicated         int           `json:"duplicated"`
	Unexpected         int           `json:"unexpected"` // events for another owner: must be 0
	LatencyP50         time.Duration `json:"latencyP50"`
	LatencyP99         time.Duration `json:"latencyP99"`
	LatencyMax         time.Duration `json:"latencyMax"`
	ServerRSSIdle      int64         `json:"serverRssIdleBytes"`
	ServerRSSLoaded    int64         `json:"serverRssLoadedBytes"`
	RSSPerConnection   int64         `json:"rssPerConnectionBytes"`
	// ServerRSSPeak is the largest resident size sampled while events were
	// published and delivered; RSSPerConnectionPeak is its share per
	// connection over the server's size before any connected.
	ServerRSSPeak        int64   `json:"serverRssPeakBytes"`
	RSSPerConnectionPeak int64   `json:"rssPerConnectionPeakBytes"`
	Rate                 float64 `json:"rate"`
	// DeliveriesPerSecond is the rate of deliveries the events asked for:
	// events per second times the connections of their owner.
	DeliveriesPerSecond float64 `json:"deliveriesPerSecond"`
	// RateLimited counts the connects local mode answered 429 (retried).
	RateLimited int `json:"rateLimited"`
	// Server is what local mode's /metrics said once the deliveries were in.
	Server ServerFigures `json:"server"`
}

// ServerFigures are the figures of local mode's /metrics the load test
// checks against its own counts.
type ServerFigures struct {
	ConnectsAccepted   int `json:"connectsAccepted"`
	RateLimited        int `json:"connectsRateLimited"`
	LiveConnections    int `json:"liveConnections"`
	EventsPublished    int `json:"eventsPublished"`
	Deliveries         int `json:"deliveries"`
	PushesGone         int `json:"pushesGone"`
	PushesFailed       int `json:"pushesFailed"`
	SlowConsumerCloses int `json:"slowConsumerCloses"`
}

// Disagreements lists where the server's figures and the load test's own
// counts differ; none on a good run. Every accepted event was published to
// every connection of its owner and read there: the server's deliveries are
// the reads, gone, failed and slow consumers none.
func (r Report) Disagreements() []string {
	var out []string
	check := func(what string, server, own int) {
		if server != own {
			out = append(out, fmt.Sprintf("%s: /metrics says %d, the load test counted %d", what, server, own))
		}
	}
	check("connects accepted", r.Server.ConnectsAccepted, r.Connections)
	check("connects refused 429", r.Server.RateLimited, r.RateLimited)
	check("live connections", r.Server.LiveConnections, r.Connections)
	check("events published", r.Server.EventsPublished, r.EventsAccepted)
	check("deliveries", r.Server.Deliveries, r.DeliveriesReceived)
	check("deliveries expected", r.Server.Deliveries, r.DeliveriesExpected)
	check("lost", r.Lost, 0)
	check("pushes gone", r.Server.PushesGone, 0)
	check("pushes failed", r.Server.PushesFailed, 0)
	check("slow consumer closes", r.Server.SlowConsumerCloses, 0)
	return out
}

func (r Report) String() string {
	agreement := "they agree"
	if d := r.Disagreements(); len(d) > 0 {
		agreement = "THEY DISAGREE:\n  " + strings.Join(d, "\n  ")
	}
	return fmt.Sprintf(`connections           %d over %d owners (opened in %v)
events accepted       %d of %d published
deliveries expected   %d
deliveries received   %d
lost                  %d
duplicated            %d
to the wrong owner    %d
latency p50/p99/max   %v / %v / %v at %g events/s (%.0f deliveries/s)
server RSS            %.1f MiB idle, %.1f MiB loaded: %.1f KiB per connection
server RSS peak       %.1f MiB while publishing: %.1f KiB per connection

                      load test   local mode's /metrics
connects accepted     %-11d %d
connects refused 429  %-11d %d
live connections      %-11d %d
events published      %-11d %d
deliveries            %-11d %d
gone / failed         -           %d / %d
slow consumer closes  -           %d
%s`,
		r.Connections, r.Owners, r.ConnectTime.Round(time.Millisecond),
		r.EventsAccepted, r.EventsPublished, r.DeliveriesExpected, r.DeliveriesReceived,
		r.Lost, r.Duplicated, r.Unexpected,
		r.LatencyP50.Round(10*time.Microsecond), r.LatencyP99.Round(10*time.Microsecond), r.LatencyMax.Round(10*time.Microsecond),
		r.Rate, r.DeliveriesPerSecond,
		float64(r.ServerRSSIdle)/(1<<20), float64(r.ServerRSSLoaded)/(1<<20), float64(r.RSSPerConnection)/1024,
		float64(r.ServerRSSPeak)/(1<<20), float64(r.RSSPerConnectionPeak)/1024,
		r.Connections, r.Server.ConnectsAccepted, r.RateLimited, r.Server.RateLimited,
		r.Connections, r.Server.LiveConnections, r.EventsAccepted, r.Server.EventsPublished,
		r.DeliveriesReceived, r.Server.Deliveries, r.Server.PushesGone, r.Server.PushesFailed,
		r.Server.SlowConsumerCloses, agreement)
}

// client is one WebSocket connection and what it received. Only its reader
// goroutine writes it, until Run has stopped the readers.
type client struct {
	owner     int
	conn      *websocket.Conn
	got       []uint16 // times each event (by sequence) was received
	wrong     int
	latencies []time.Duration
}

func main() {
	cfg := Config{Log: os.Stderr}
	flag.StringVar(&cfg.Server, "server", "", "local mode binary (default: build ./infra/local into a temporary folder)")
	flag.IntVar(&cfg.Port, "port", 18000, "loopback port for local mode")
	flag.IntVar(&cfg.Connections, "connections", 10000, "WebSocket connections")
	flag.IntVar(&cfg.Owners, "owners", 100, "owners the connections are spread over")
	flag.IntVar(&cfg.Events, "events", 300, "job events to publish")
	flag.Float64Var(&cfg.Rate, "rate", 50, "events per second")
	flag.IntVar(&cfg.Dialers, "dialers", 64, "connections opened in parallel")
	flag.DurationVar(&cfg.Settle, "settle", 30*time.Second, "longest wait for the last deliveries")
	flag.BoolVar(&cfg.ServerInfo, "server-info", false, "print the server's INFO log lines too, not only its warnings and errors")
	rates := flag.String("rates", "", "comma-separated events per second: one run each, instead of -rate")
	p99 := flag.Duration("p99", 100*time.Millisecond, "with -rates, the p99 a rate must keep to count as sustained")
	jsonOut := flag.Bool("json", false, "print the reports as JSON, one a line")
	resumeEvents := flag.Int("resume-events", 0, "instead of the publishing load: publish this many events to one owner, then have -connections clients of it resume them all at once")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *resumeEvents > 0 {
		rep, err := RunResume(ctx, cfg, *resumeEvents)
		if *jsonOut {
			_ = json.NewEncoder(os.Stdout).Encode(rep)
		} else {
			fmt.Printf("%s\n", rep)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		return
	}
	sweep := []float64{cfg.Rate}
	if *rates != "" {
		sweep = nil
		for _, f := range strings.Split(*rates, ",") {
			r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || r <= 0 {
				fmt.Fprintf(os.Stderr, "loadtest: -rates: %q is not a positive number\n", f)
				os.Exit(2)
			}
			sweep = append(sweep, r)
		}
	}
	failed, best := false, Report{}
	for _, rate := range sweep {
		cfg.Rate = rate
		rep, err := Run(ctx, cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		if *jsonOut {
			_ = json.NewEncoder(os.Stdout).Encode(rep)
		} else {
			fmt.Printf("%s\n\n", rep)
		}
		failed = failed || rep.Lost > 0 || rep.Unexpected > 0 || len(rep.Disagreements()) > 0
		if rep.Lost == 0 && rep.LatencyP99 <= *p99 && rep.DeliveriesPerSecond > best.DeliveriesPerSecond {
			best = rep
		}
	}
	if len(sweep) > 1 && !*jsonOut {
		fmt.Printf("largest sustained: %.0f deliveries/s (%g events/s) with p99 %v <= %v\n",
			best.DeliveriesPerSecond, best.Rate, best.LatencyP99.Round(100*time.Microsecond), *p99)
	}
	if failed {
		os.Exit(1)
	}
}

// Run starts local mode, runs the load and stops the server.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if cfg.Owners < 1 || cfg.Connections < cfg.Owners || cfg.Events < 1 || cfg.Rate <= 0 {
		return Report{}, errors.New("need connections >= owners >= 1, events >= 1, rate > 0")
	}
	if cfg.Dialers < 1 {
		cfg.Dialers = 1
	}
	// A key per 100 connections of an owner: local mode lets a key connect
	// 100 times at once (its burst), so that even one owner of 10,000
	// connections connects at full speed.
	keysPerOwner := (cfg.Connections/cfg.Owners + 99) / 100
	keys := make([][]string, cfg.Owners)
	var pairs []string
	for i := range keys {
		for k := range keysPerOwner {
			key := fmt.Sprintf("lt_key_%04d_%d_%d", i, k, time.Now().UnixNano())
			keys[i] = append(keys[i], key)
			pairs = append(pairs, fmt.Sprintf("%s=owner-%04d", key, i))
		}
	}
	base, srv, stopServer, err := startLocal(ctx, cfg, pairs)
	if err != nil {
		return Report{}, err
	}
	defer stopServer()
	rep := Report{Connections: cfg.Connections, Owners: cfg.Owners}
	rep.ServerRSSIdle = rss(srv.Process.Pid)

	clients, err := connectAll(ctx, cfg, base, keys, &rep)
	defer func() {
		for _, c := range clients {
			if c != nil && c.conn != nil {
				c.conn.CloseNow()
			}
		}
	}()
	if err != nil {
		return rep, err
	}
	rep.ServerRSSLoaded = rss(srv.Process.Pid)
	if rep.ServerRSSLoaded > rep.ServerRSSIdle {
		rep.RSSPerConnection = (rep.ServerRSSLoaded - rep.ServerRSSIdle) / int64(cfg.Connections)
	}

	perOwner := make([]int, cfg.Owners)
	for _, c := range clients {
		perOwner[c.owner]++
		c.got = make([]uint16, cfg.Events)
	}
	// When each event was published, in Unix nanoseconds: read by every
	// reader for every message, so an atomic each rather than a lock all
	// 10,000 readers contend for.
	published := make([]atomic.Int64, cfg.Events)
	// allIn closes once the readers have counted the deliveries the accepted
	// events ask for, a number known once publishing is over (until then,
	// want is larger than any count).
	var received, want atomic.Int64
	want.Store(math.MaxInt64)
	allIn := make(chan struct{})
	arrived := sync.OnceFunc(func() { close(allIn) })
	var readers sync.WaitGroup
	for _, c := range clients {
		readers.Go(func() {
			c.read(published, func() {
				if received.Add(1) >= want.Load() {
					arrived()
				}
			})
		})
	}
	stopReading := func() {
		// Reads run without a context, which would cost each message a
		// registration with it: closing the connection ends them.
		for _, c := range clients {
			c.conn.CloseNow()
		}
		readers.Wait()
	}
	defer stopReading()
	peak := sampleRSS(srv.Process.Pid)

	accepted, err := publish(ctx, cfg, base, perOwner, published, &rep)
	if err != nil {
		peak()
		return rep, err
	}
	// Wait for the deliveries, for at most Settle.
	want.Store(int64(rep.DeliveriesExpected))
	if received.Load() >= want.Load() {
		arrived()
	}
	settle := time.NewTimer(cfg.Settle)
	defer settle.Stop()
	select {
	case <-allIn:
	case <-settle.C:
	case <-ctx.Done():
	}
	// Read the server's figures while every connection is still open:
	// stopping the readers closes them.
	if rep.Server, err = serverFigures(ctx, "http://"+base+"/metrics"); err != nil {
		return rep, err
	}
	rep.ServerRSSPeak = peak()
	if rep.ServerRSSPeak > rep.ServerRSSIdle {
		rep.RSSPerConnectionPeak = (rep.ServerRSSPeak - rep.ServerRSSIdle) / int64(cfg.Connections)
	}
	stopReading()

	var all []time.Duration
	for _, c := range clients {
		for seq, owner := range accepted {
			if owner != c.owner {
				continue
			}
			switch n := int(c.got[seq]); {
			case n == 0:
				rep.Lost++
			case n > 1:
				rep.Duplicated += n - 1
			}
		}
		for _, n := range c.got {
			rep.DeliveriesReceived += int(n)
		}
		rep.Unexpected += c.wrong
		all = append(all, c.latencies...)
	}
	slices.Sort(all)
	if len(all) > 0 {
		rep.LatencyP50 = all[len(all)/2]
		rep.LatencyP99 = all[len(all)*99/100]
		rep.LatencyMax = all[len(all)-1]
	}
	rep.Rate = cfg.Rate
	rep.DeliveriesPerSecond = cfg.Rate * float64(cfg.Connections) / float64(cfg.Owners)
	return rep, nil
}

// startLocal builds local mode unless cfg.Server names a binary, starts it
// on cfg.Port with the API keys of pairs (key=owner), and waits until it
// answers. stop ends it and removes what was built.
func startLocal(ctx context.Context, cfg Config, pairs []string) (base string, srv *exec.Cmd, stop func(), err error) {
	if err := raiseFileLimit(); err != nil {
		return "", nil, nil, err
	}
	var cleanup []func()
	stopAll := func() {
		for _, f := range slices.Backward(cleanup) {
			f()
		}
	}
	defer func() {
		if err != nil {
			stopAll()
		}
	}()
	if cfg.Server == "" {
		dir, err := os.MkdirTemp("", "wsnotify-loadtest")
		if err != nil {
			return "", nil, nil, err
		}
		cleanup = append(cleanup, func() { os.RemoveAll(dir) })
		cfg.Server = dir + "/local"
		build := exec.CommandContext(ctx, "go", "build", "-o", cfg.Server, "./infra/local")
		build.Stdout, build.Stderr = cfg.Log, cfg.Log
		if err := build.Run(); err != nil {
			return "", nil, nil, fmt.Errorf("build local mode: %w", err)
		}
	}
	base = fmt.Sprintf("127.0.0.1:%d", cfg.Port)
	cmd := exec.Command(cfg.Server, "--addr", base)
	cmd.Env = append(os.Environ(), "WSNOTIFY_API_KEYS="+strings.Join(pairs, ","))
	// The banner is of no use here, and the server's INFO lines (one per
	// connect, disconnect and publish: tens of thousands in a run) would
	// bury the report; warnings, errors and anything unexpected still show.
	cmd.Stdout, cmd.Stderr = io.Discard, cfg.Log
	if !cfg.ServerInfo {
		cmd.Stderr = &dropInfo{w: cfg.Log}
	}
	if err := cmd.Start(); err != nil {
		return "", nil, nil, fmt.Errorf("start local mode: %w", err)
	}
	exited := make(chan struct{}) // closed once local mode has exited: the wait below and the clean-up both see it
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(exited) }()
	cleanup = append(cleanup, func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	if err := waitReady(ctx, "http://"+base+"/", exited); err != nil {
		if errors.Is(err, errExited) {
			err = fmt.Errorf("%w (%v)", err, exitErr)
		}
		return "", nil, nil, err
	}
	return base, cmd, stopAll, nil
}

// connectAll opens the connections, Dialers at a time; connection i belongs
// to owner i % Owners. A 429 from the per-key connect limit is retried after
// a short pause, bounded by the context.
func connectAll(ctx context.Context, cfg Config, base string, keys [][]string, rep *Report) ([]*client, error) {
	clients := make([]*client, cfg.Connections)
	var rateLimited atomic.Int64
	defer func() { rep.RateLimited = int(rateLimited.Load()) }()
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Dialers)
	for i := range clients {
		g.Go(func() error {
			owner := i % cfg.Owners
			key := keys[owner][i/cfg.Owners%len(keys[owner])]
			url := fmt.Sprintf("ws://%s/api/v1/ws/lt-%d?token=%s", base, i, key)
			for attempt := 0; ; attempt++ {
				dctx, cancel := context.WithTimeout(gctx, 30*time.Second)
				conn, resp, err := websocket.Dial(dctx, url, nil)
				cancel()
				if err == nil {
					conn.SetReadLimit(256 * 1024)
					clients[i] = &client{owner: owner, conn: conn}
					return nil
				}
				if resp != nil && resp.StatusCode == http.StatusTooManyRequests && attempt < 100 {
					rateLimited.Add(1)
					select {
					case <-gctx.Done():
						return gctx.Err()
					case <-time.After(50 * time.Millisecond):
					}
					continue
				}
				return fmt.Errorf("connection %d: %w", i, err)
			}
		})
	}
	err := g.Wait()
	rep.ConnectTime = time.Since(start)
	return clients, err
}

// read records each job event until the connection closes: its jobId is
// "lt-<owner>-<seq>". It parses no more than that: the clients share the
// machine with the server, and at 200,000 messages a second a JSON decode
// each would take a core from it.
func (c *client) read(published []atomic.Int64, seen func()) {
	buf := make([]byte, 4096) // events are a few hundred bytes; one buffer, not one per message
	for {
		_, r, err := c.conn.Reader(context.Background())
		if err != nil {
			return // closed: the counts tell the rest
		}
		n, err := io.ReadFull(r, buf)
		if err != io.ErrUnexpectedEOF && err != io.EOF {
			_, _ = io.Copy(io.Discard, r) // larger than any load test event: not ours
			continue
		}
		data := buf[:n]
		at := time.Now()
		owner, seq, ok := jobOf(data)
		if !ok || seq >= len(c.got) {
			continue
		}
		if owner != c.owner {
			c.wrong++
			continue
		}
		c.got[seq]++
		c.latencies = append(c.latencies, at.Sub(time.Unix(0, published[seq].Load())))
		seen()
	}
}

var jobIDPrefix = []byte(`"jobId":"lt-`)

// jobOf returns the owner and sequence of a load test event's jobId.
func jobOf(data []byte) (owner, seq int, ok bool) {
	i := bytes.Index(data, jobIDPrefix)
	if i < 0 {
		return 0, 0, false
	}
	id := data[i+len(jobIDPrefix):]
	end := bytes.IndexByte(id, '"')
	if end < 0 {
		return 0, 0, false
	}
	o, s, found := bytes.Cut(id[:end], []byte("-"))
	if !found {
		return 0, 0, false
	}
	owner, err1 := strconv.Atoi(string(o))
	seq, err2 := strconv.Atoi(string(s))
	return owner, seq, err1 == nil && err2 == nil && seq >= 0
}

// sampleRSS samples a process's resident size every 50 ms until the
// returned stop is called, which returns the largest.
func sampleRSS(pid int) (stop func() int64) {
	done := make(chan struct{})
	result := make(chan int64)
	go func() {
		largest := rss(pid)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				result <- max(largest, rss(pid))
				return
			case <-tick.C:
				largest = max(largest, rss(pid))
			}
		}
	}()
	return sync.OnceValue(func() int64 {
		close(done)
		return <-result
	})
}

// publish sends Events job events at Rate through the Invoke API, in SQS
// batches of up to 10 records, and returns the accepted ones (seq -> owner).
func publish(ctx context.Context, cfg Config, base string, perOwner []int, published []atomic.Int64, rep *Report) (map[int]int, error) {
	accepted := map[int]int{}
	url := "http://" + base + "/2015-03-31/functions/JobEventsFunction/invocations"
	batch := 1
	if cfg.Rate > 100 {
		batch = 10 // keep request rate sane at high event rates
	}
	interval := time.Duration(float64(time.Second) * float64(batch) / cfg.Rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for seq := 0; seq < cfg.Events; {
		var sqs events.SQSEvent
		owners := map[string]int{}
		now := time.Now()
		for ; seq < cfg.Events && len(sqs.Records) < batch; seq++ {
			owner := seq % cfg.Owners
			body := fmt.Sprintf(`{"ownerId":"owner-%04d","event":{"type":"job_progress","jobId":"lt-%d-%d","progress":50,"processedCount":1,"totalCount":2,"currentFile":"load.bin"}}`, owner, owner, seq)
			id := strconv.Itoa(seq)
			sqs.Records = append(sqs.Records, events.SQSMessage{MessageId: id, Body: body, EventSource: "aws:sqs"})
			owners[id] = owner
			published[seq].Store(now.UnixNano())
		}
		rep.EventsPublished += len(sqs.Records)
		out, err := invokeJobEvents(url, sqs)
		if err != nil {
			return accepted, err
		}
		failed := map[string]bool{}
		for _, f := range out.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		for id, owner := range owners {
			if !failed[id] {
				n, _ := strconv.Atoi(id)
				accepted[n] = owner
				rep.EventsAccepted++
				rep.DeliveriesExpected += perOwner[owner]
			}
		}
		select {
		case <-ctx.Done():
			return accepted, ctx.Err()
		case <-tick.C:
		}
	}
	return accepted, nil
}

// invokeJobEvents posts one SQS batch to the job events function's Invoke
// API at url and returns the function's answer: its failed records.
func invokeJobEvents(url string, batch events.SQSEvent) (events.SQSEventResponse, error) {
	var out events.SQSEventResponse
	body, err := json.Marshal(batch)
	if err != nil {
		return out, err
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return out, fmt.Errorf("invoke: %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("invoke answered %d: %v", resp.StatusCode, err)
	}
	return out, nil
}

// serverFigures reads local mode's /metrics (from this machine: no
// credential needed on loopback).
func serverFigures(ctx context.Context, url string) (ServerFigures, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return ServerFigures{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ServerFigures{}, fmt.Errorf("read /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ServerFigures{}, fmt.Errorf("read /metrics: status %d", resp.StatusCode)
	}
	s, err := prom.ParseText(resp.Body)
	if err != nil {
		return ServerFigures{}, err
	}
	n := func(f metrics.Figure, value ...string) int { return int(s.Get(f, value...)) }
	return ServerFigures{
		ConnectsAccepted:   n(metrics.ConnectsAccepted),
		RateLimited:        n(metrics.ConnectsRefused, metrics.Reason(notify.CodeRateLimited)),
		LiveConnections:    n(metrics.LiveConnections),
		EventsPublished:    n(metrics.EventsPublished, string(event.TypeJobProgress)),
		Deliveries:         n(metrics.Deliveries),
		PushesGone:         n(metrics.PushesGone),
		PushesFailed:       n(metrics.PushesFailed),
		SlowConsumerCloses: n(metrics.SlowConsumerCloses),
	}, nil
}

// errExited is waitReady's error when local mode ends before it answers.
var errExited = errors.New("local mode exited before answering")

func waitReady(ctx context.Context, url string, exited <-chan struct{}) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-exited:
			return errExited
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("local mode did not answer on %s", url)
}

// rss reads a process's resident set size from /proc (Linux).
func rss(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// raiseFileLimit lifts the soft open-files limit to the hard one: each
// connection is a socket here and another in the server, which inherits it.
func raiseFileLimit() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("read open-files limit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return fmt.Errorf("raise open-files limit: %w", err)
		}
	}
	return nil
}

// dropInfo passes on what local mode writes to its log, less the lines at
// INFO or DEBUG level. It is written to by one goroutine (os/exec's copy of
// the server's stderr).
type dropInfo struct {
	w       io.Writer
	partial []byte // the start of a line whose end has not arrived yet
}

func (d *dropInfo) Write(p []byte) (int, error) {
	d.partial = append(d.partial, p...)
	for {
		i := bytes.IndexByte(d.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := d.partial[:i+1]
		if !bytes.Contains(line, []byte(" level=INFO ")) && !bytes.Contains(line, []byte(" level=DEBUG ")) {
			if _, err := d.w.Write(line); err != nil {
				return len(p), err
			}
		}
		d.partial = d.partial[i+1:]
	}
}
