package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// link is one backend as the binaries reach it: a Toxiproxy proxy (TCP
// faults: latency, bandwidth, resets, blackholes) in front of an HTTP fault
// injector (answers the backend could give: throttling, 500, 429) in
// front of the backend itself.
type link struct {
	name  string
	proxy *toxiproxy.Proxy
	http  *httpFault
}

// URL is where the binaries are pointed: the proxy's listener.
func (l *link) URL() string { return "http://" + l.proxy.Listen }

// toxic adds a Toxiproxy toxic, as its JSON API takes it, e.g.
// {"type":"latency","attributes":{"latency":50}}.
func (l *link) toxic(t testing.TB, spec string) {
	t.Helper()
	if _, err := l.proxy.Toxics.AddToxicJson(strings.NewReader(spec)); err != nil {
		t.Fatalf("chaos: toxic %s on %s: %v", spec, l.name, err)
	}
}

// heal removes every toxic and HTTP fault of the link.
func (l *link) heal() {
	l.proxy.Toxics.ResetToxics(context.Background())
	l.http.set(nil)
}

// newToxiproxy is the proxies' server: only its logger and metrics are used,
// as no API listener is started.
func newToxiproxy() *toxiproxy.ApiServer {
	return toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
}

// newLink starts the fault injector in front of upstream (an http URL) and
// a proxy in front of it, both stopped when the test ends.
func newLink(t testing.TB, srv *toxiproxy.ApiServer, name, upstream string) *link {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	f := &httpFault{next: httputil.NewSingleHostReverseProxy(u)}
	hs := httptest.NewServer(f)
	t.Cleanup(hs.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close() // the proxy listens there itself
	p := toxiproxy.NewProxy(srv, name, listen, strings.TrimPrefix(hs.URL, "http://"))
	if err := p.Start(); err != nil {
		t.Fatalf("chaos: start proxy %s: %v", name, err)
	}
	t.Cleanup(p.Stop)
	return &link{name: name, proxy: p, http: f}
}

// answer is an error answer the fault injector gives instead of the
// backend's.
type answer struct {
	status int
	body   string // JSON
}

// Answers of DynamoDB and of the Management API that the SDK retries.
var (
	throughputExceeded = answer{400, `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"injected"}`}
	throttling         = answer{400, `{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"injected"}`}
	dynamoInternal     = answer{500, `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected"}`}
	tooManyRequests    = answer{429, `{"message":"Too Many Requests"}`}
	// gone is the Management API's answer for a connection that no longer
	// exists (the SDK reads the exception's name from the header).
	gone          = answer{410, `{"__type":"com.amazonaws.apigateway#GoneException","message":"injected"}`}
	internalError = answer{500, `{"message":"Internal server error"}`}
)

// faultPlan chooses which requests get an injected answer.
type faultPlan struct {
	answers []answer // cycled through, one per faulted request
	every   int      // fault each every-th request (1: each); 0: none
	burst   int      // at most this many faults, then none (0: no bound)
	// match, if set, limits the faults to the requests it accepts.
	match func(*http.Request) bool
	// injected, if set, is called with each request answered with a fault,
	// after the answer is written.
	injected func(*http.Request)
}

// httpFault is an http.Handler that passes requests to next, or answers
// some of them with an injected error, as its plan says.
type httpFault struct {
	next http.Handler

	mu       sync.Mutex
	plan     *faultPlan
	seen     int // requests the plan matched
	injected int // faults answered under the plan
	total    int // faults answered since the start
}

func (f *httpFault) set(p *faultPlan) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plan, f.seen, f.injected = p, 0, 0
}

// injectedTotal returns how many answers were injected since the start.
func (f *httpFault) injectedTotal() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.total
}

func (f *httpFault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a, hook, ok := f.choose(r); ok {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("X-Amzn-ErrorType", errorType(a.body))
		w.WriteHeader(a.status)
		_, _ = fmt.Fprint(w, a.body)
		if hook != nil {
			hook(r)
		}
		return
	}
	f.next.ServeHTTP(w, r)
}

func (f *httpFault) choose(r *http.Request) (answer, func(*http.Request), bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.plan
	if p == nil || p.every == 0 || (p.match != nil && !p.match(r)) {
		return answer{}, nil, false
	}
	f.seen++
	if f.seen%p.every != 0 || (p.burst > 0 && f.injected >= p.burst) {
		return answer{}, nil, false
	}
	a := p.answers[f.injected%len(p.answers)]
	f.injected++
	f.total++
	return a, p.injected, true
}

// errorType is the exception name of an injected DynamoDB body, for the
// header the SDK also reads; empty for others.
func errorType(body string) string {
	var v struct {
		Type string `json:"__type"`
	}
	_ = json.Unmarshal([]byte(body), &v)
	_, name, _ := strings.Cut(v.Type, "#")
	return name
}
