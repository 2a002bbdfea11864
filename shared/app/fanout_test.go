package app

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/push/apigw"
	"github.com/wsnotify/wsnotify/shared/store"
	"github.com/wsnotify/wsnotify/shared/store/memory"
)

// The fan-out benchmark measures a publish as the functions run it: the
// Notifier over the Management API pusher and the SDK client that build
// makes, posting to every connection of one owner, against an HTTPS
// stand-in of the Management API that answers each PostToConnection after
// postLatency. The stand-in runs in a process of its own (this test binary,
// started again with fanOutServerEnv set), so that the CPU time the
// benchmark reports per post is the function's alone: in Lambda that CPU is
// what memory buys (1,769 MB is one vCPU).

// postLatency is the stand-in's answer time for one post.
const postLatency = 20 * time.Millisecond

// fanOutServerEnv, set, makes the test binary the stand-in server.
const fanOutServerEnv = "WSNOTIFY_FANOUT_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(fanOutServerEnv) != "" {
		serveFanOut()
		return
	}
	os.Exit(m.Run())
}

// serveFanOut is the stand-in's process: it prints its URL and certificate,
// then answers "stats" on stdin with the TLS connections accepted and the
// posts answered, until stdin closes.
func serveFanOut() {
	var conns, posts atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(postLatency) // the Management API's answer time, not a wait for an event
		posts.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	fmt.Printf("%s %s\n", srv.URL, base64.StdEncoding.EncodeToString(srv.Certificate().Raw))
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		fmt.Printf("%d %d\n", conns.Load(), posts.Load())
	}
}

// fanOutServer is the stand-in seen from the benchmark.
type fanOutServer struct {
	url   string
	roots *x509.CertPool
	in    io.Writer
	out   *bufio.Scanner
}

func startFanOutServer(tb testing.TB) *fanOutServer {
	tb.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), fanOutServerEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		in.Close() // the server exits when its stdin closes
		_ = cmd.Wait()
	})
	s := &fanOutServer{in: in, out: bufio.NewScanner(out)}
	if !s.out.Scan() {
		tb.Fatalf("fan-out server did not start: %v", s.out.Err())
	}
	urlAndCert := strings.Fields(s.out.Text())
	der, err := base64.StdEncoding.DecodeString(urlAndCert[1])
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	s.url, s.roots = urlAndCert[0], x509.NewCertPool()
	s.roots.AddCert(cert)
	return s
}

// stats returns the TLS connections the server accepted and the posts it answered.
func (s *fanOutServer) stats(tb testing.TB) (conns, posts int64) {
	tb.Helper()
	if _, err := io.WriteString(s.in, "stats\n"); err != nil || !s.out.Scan() {
		tb.Fatalf("fan-out server stats: %v %v", err, s.out.Err())
	}
	if _, err := fmt.Sscan(s.out.Text(), &conns, &posts); err != nil {
		tb.Fatal(err)
	}
	return conns, posts
}

// fanOut is one owner's connections in a memory store, and a Notifier that
// publishes to them through the stand-in.
type fanOut struct {
	srv         *fanOutServer
	store       *memory.Store
	concurrency int
	client      fanOutClient
}

// fanOutClient is how a fan-out reaches the Management API.
type fanOutClient struct {
	name string
	http func(concurrency int) *awshttp.BuildableClient
	// sdkPipeline: posts go through the SDK client's PostToConnection
	// rather than apigw.Client's own (the functions' before).
	sdkPipeline bool
}

var (
	// The functions' client.
	functionsClient = fanOutClient{name: "pooled", http: pooledHTTPClient}
	// Before apigw.Client sent its posts itself.
	sdkPipelineClient = fanOutClient{name: "sdk-pipeline", http: pooledHTTPClient, sdkPipeline: true}
	// Before the pool was sized: the SDK's default transport and pipeline.
	sdkDefaultClient = fanOutClient{name: "sdk-default", http: sdkDefaultHTTPClient, sdkPipeline: true}
)

func newFanOut(tb testing.TB, srv *fanOutServer, connections, concurrency int, client fanOutClient) *fanOut {
	tb.Helper()
	s := memory.New()
	now := time.Now()
	for i := range connections {
		c := store.Connection{OwnerID: "acct_1", ClientID: fmt.Sprintf("tab-%05d", i), ConnectionID: fmt.Sprintf("Conn%011d=", i),
			ConnectedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour)}
		if err := s.PutConnection(context.Background(), c, now); err != nil {
			tb.Fatal(err)
		}
	}
	return &fanOut{srv: srv, store: s, concurrency: concurrency, client: client}
}

// notifier returns a Notifier as build makes it, over a new HTTP client: a
// function's first publish after a cold start, whose pool holds no
// connection yet.
func (f *fanOut) notifier(tb testing.TB) *notify.Notifier {
	tb.Helper()
	httpClient := f.client.http(f.concurrency).WithTransportOptions(func(t *http.Transport) {
		t.TLSClientConfig = t.TLSClientConfig.Clone()
		t.TLSClientConfig.RootCAs = f.srv.roots
	})
	awsCfg := aws.Config{
		Region:      "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:  httpClient,
	}
	log := slog.New(slog.DiscardHandler)
	pusher, err := newPusher(awsCfg, f.srv.url+"/prod", log, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if f.client.sdkPipeline {
		pusher = apigw.New(apigatewaymanagementapi.NewFromConfig(awsCfg, func(o *apigatewaymanagementapi.Options) {
			o.BaseEndpoint = aws.String(f.srv.url + "/prod")
		}), log)
	}
	return notify.New(auth.NewAuthenticator(f.store), f.store, pusher, log, notify.Config{Concurrency: f.concurrency})
}

var fanOutEvent = event.JobProgress{Type: event.TypeJobProgress, JobID: "job_1", Progress: 50, ProcessedCount: 5000, TotalCount: 10000, CurrentFile: "reports/2026/q3.pdf"}

// publish publishes one event and returns what it took: the TLS connections
// it opened, its wall time (the stand-in's statistics, read before and
// after, are not in it) and the CPU time of this process.
func (f *fanOut) publish(tb testing.TB, n *notify.Notifier, connections int) (newConns int64, elapsed, cpu time.Duration) {
	tb.Helper()
	conns0, posts0 := f.srv.stats(tb)
	cpu0, start := processCPU(), time.Now()
	res, err := n.Publish(context.Background(), "acct_1", "", "", fanOutEvent)
	elapsed, cpu = time.Since(start), processCPU()-cpu0
	if err != nil || res.Delivered != connections {
		tb.Fatalf("Publish = %+v, %v; want %d delivered", res, err, connections)
	}
	conns1, posts1 := f.srv.stats(tb)
	if posts1-posts0 != int64(connections) {
		tb.Fatalf("the server answered %d posts, want %d", posts1-posts0, connections)
	}
	return conns1 - conns0, elapsed, cpu
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sdkDefaultHTTPClient is the HTTP client before the pool was sized: the
// SDK's default transport (10 idle connections per host) with our timeouts.
func sdkDefaultHTTPClient(int) *awshttp.BuildableClient { return HTTPClient() }

// BenchmarkFanOut publishes one event to an owner's connections through the
// Management API stand-in, for several owner sizes and concurrencies, with
// the pooled client the functions use and with the SDK's default one; from
// a warm function (its connections open from an earlier publish) and from a
// cold one (its first publish, which opens them). Besides the time per
// publish it reports the TLS connections each opened (tls-conns/op), the
// time over the ideal ⌈N / concurrency⌉ × 20 ms (x-ideal), and this
// process's CPU time per post (cpu-µs/post).
//
//	go test -run '^$' -bench FanOut -count 5 ./shared/app/ | benchstat -
func BenchmarkFanOut(b *testing.B) {
	srv := startFanOutServer(b)
	defer debug.SetGCPercent(debug.SetGCPercent(gcPercent)) // as tuneGC sets it in the functions
	for _, client := range []fanOutClient{functionsClient, sdkPipelineClient, sdkDefaultClient} {
		for _, start := range []string{"warm", "cold"} {
			for _, connections := range []int{100, 1000, 10000} {
				for _, concurrency := range []int{32, 64, 128, 192, 256, 512} {
					switch {
					case client.name == sdkDefaultClient.name && (connections != 10000 || (concurrency != 32 && concurrency != 128)),
						client.name == sdkPipelineClient.name && (start != "warm" || concurrency != notify.DefaultConcurrency):
						continue // the befores: enough to compare
					}
					name := fmt.Sprintf("client=%s/start=%s/conns=%d/concurrency=%d", client.name, start, connections, concurrency)
					b.Run(name, func(b *testing.B) {
						benchFanOut(b, srv, connections, concurrency, client, start == "warm")
					})
				}
			}
		}
	}
}

func benchFanOut(b *testing.B, srv *fanOutServer, connections, concurrency int, client fanOutClient, warm bool) {
	f := newFanOut(b, srv, connections, concurrency, client)
	var n *notify.Notifier
	if warm {
		n = f.notifier(b)
		f.publish(b, n, connections) // opens the connections, untimed
	}
	var conns int64
	var cpu, elapsed time.Duration
	for b.Loop() {
		if !warm {
			n = f.notifier(b)
		}
		c, e, u := f.publish(b, n, connections)
		conns, elapsed, cpu = conns+c, elapsed+e, cpu+u
	}
	// N × 20 ms / concurrency, in whole rounds: fewer connections than the
	// concurrency still take one post's time.
	ideal := time.Duration((connections+concurrency-1)/concurrency) * postLatency
	b.ReportMetric(float64(conns)/float64(b.N), "tls-conns/op")
	b.ReportMetric(float64(elapsed)/float64(b.N)/float64(ideal), "x-ideal")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N)/float64(connections), "cpu-µs/post")
}

func TestAFanOutOpensAtMostItsConcurrencyInConnectionsAndReusesThem(t *testing.T) {
	srv := startFanOutServer(t)
	const connections, concurrency = 300, 24
	f := newFanOut(t, srv, connections, concurrency, functionsClient)
	n := f.notifier(t)
	if conns, _, _ := f.publish(t, n, connections); conns > concurrency {
		t.Fatalf("the first publish opened %d TLS connections, want at most the concurrency %d", conns, concurrency)
	}
	if conns, _, _ := f.publish(t, n, connections); conns != 0 {
		t.Fatalf("the second publish of a warm function opened %d TLS connections, want 0", conns)
	}
	t.Run("the benchmark runs", func(t *testing.T) {
		res := testing.Benchmark(func(b *testing.B) { benchFanOut(b, srv, 50, 8, functionsClient, false) })
		if res.N < 1 || res.Extra["tls-conns/op"] > 8 {
			t.Fatalf("benchmark result %v", res)
		}
	})
}

func TestThePooledClientBoundsConnectionsPerHost(t *testing.T) {
	for _, n := range []int{1, 32, 200} {
		tr := pooledHTTPClient(n).GetTransport()
		if tr.MaxConnsPerHost != n || tr.MaxIdleConnsPerHost != n || tr.MaxIdleConns != 0 {
			t.Errorf("pool of %d: MaxConnsPerHost %d, MaxIdleConnsPerHost %d, MaxIdleConns %d", n, tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost, tr.MaxIdleConns)
		}
		if tr.ResponseHeaderTimeout != responseHeaderTimeout {
			t.Errorf("pool of %d lost the timeouts", n)
		}
	}
}
