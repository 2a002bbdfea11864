package chaos

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/infra/local/server"
	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/store/dynamo"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

const (
	table = "chaos"
	key   = "wsn_chaos_key_0123456789"
	owner = "acct_chaos"
	// functionTimeout is every binary's deadline, as template.yaml gives
	// the job events function.
	functionTimeout = 10 * time.Second
	// publishTimeout bounds a publish API request: PublishFunction's
	// Timeout in template.yaml (API Gateway's integration timeout, 29 s),
	// which local mode applies whether it relays the request to the
	// binary or serves it in process.
	publishTimeout = server.DefaultRouteTimeout
)

// rig is the service on one machine with a fault-injecting link between the
// function binaries and each backend.
type rig struct {
	addr    string         // local mode's host:port
	store   *dynamo.Store  // the table, reached without faults
	dynamo  *link          // binaries → DynamoDB (dynalite)
	manage  *link          // binaries → local mode's Management API
	sqs     *link          // job events binary → the job dead-letter queue
	dlq     *testenv.SQS   // that queue
	local   *server.Server // local mode, in this process
	stop    func() error   // shuts local mode down
	lambdas map[string]*testenv.Lambda
	// embedded is set when local mode runs the functions in-process on
	// its DynamoDB store, reached through the dynamo link (no binaries, no
	// Management API or queue links, no job dead-letter queue).
	embedded bool
	kills    atomic.Int64 // bootstraps killed by a scenario
	restarts atomic.Int64 // restarts of local mode by a scenario
	config   server.Config
	// busy counts the faults still at work in goroutines of their own.
	busy sync.WaitGroup
}

// serve starts local mode on l.
func (r *rig) serve(l net.Listener) error {
	local, err := server.New(r.config)
	if err != nil {
		return err
	}
	r.local = local
	_, r.stop = local.Start(l, 10*time.Second)
	return nil
}

// restart shuts local mode down gracefully (its connections close with
// 1001 and their $disconnect runs) and starts it again on its address.
func (r *rig) restart() error {
	if err := r.stop(); err != nil {
		return fmt.Errorf("shut local mode down: %w", err)
	}
	l, err := net.Listen("tcp", r.addr)
	if err != nil {
		return fmt.Errorf("listen again on %s: %w", r.addr, err)
	}
	r.restarts.Add(1)
	return r.serve(l)
}

// newRig starts dynalite with the template's table holding the chaos key,
// local mode on it (in this process) and the five binaries under the
// emulator, each backend behind a link.
func newRig(t *testing.T) *rig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dynalite := testenv.Dynalite(t)
	r := &rig{store: dynamo.New(testenv.Table(t, dynalite, table), table), dlq: &testenv.SQS{}}
	if err := r.store.PutKey(ctx, auth.Key{Hash: auth.Hash(key), OwnerID: owner, Name: "chaos", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	sqsServer := httptest.NewServer(r.dlq)
	t.Cleanup(sqsServer.Close)

	// The binaries push to local mode's stage URL: its listener is opened
	// first, and local mode served on it once the binaries run.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	toxi := newToxiproxy()
	r.dynamo = newLink(t, toxi, "dynamodb", dynalite)
	r.manage = newLink(t, toxi, "management", "http://"+r.addr)
	r.sqs = newLink(t, toxi, "sqs", sqsServer.URL)

	env := append(testenv.FunctionEnv(table, r.dynamo.URL(), r.manage.URL()+"/"+server.DefaultStage),
		"JOB_DEAD_LETTER_QUEUE_URL="+r.sqs.URL()+"/000000000000/chaos-job-dlq",
		"AWS_ENDPOINT_URL_SQS="+r.sqs.URL(),
		"AWS_LAMBDA_FUNCTION_TIMEOUT=10",
		"LOG_LEVEL=ERROR")
	r.lambdas = testenv.StartFunctions(t, env...)
	endpoints := map[string]string{}
	for name, l := range r.lambdas {
		endpoints[name] = l.URL
	}
	st, err := server.OpenDynamoDB(ctx, server.DynamoDB{Endpoint: dynalite, Table: table})
	if err != nil {
		t.Fatal(err)
	}
	r.config = server.Config{
		APIKeys:           map[string]string{key: owner},
		Store:             st,
		FunctionEndpoints: endpoints,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if err := r.serve(l); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.stop() })
	return r
}

// newEmbeddedRig starts dynalite with the template's table and local mode
// on it (in this process) running every function in-process, as `make run
// ARGS=--store=dynamodb` does, its store reached through a link.
func newEmbeddedRig(t *testing.T) *rig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dynalite := testenv.Dynalite(t)
	r := &rig{store: dynamo.New(testenv.Table(t, dynalite, table), table), embedded: true}
	r.dynamo = newLink(t, newToxiproxy(), "local-store", dynalite)
	st, err := server.OpenDynamoDB(ctx, server.DynamoDB{Endpoint: r.dynamo.URL(), Table: table})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	r.config = server.Config{
		APIKeys: map[string]string{key: owner},
		Store:   st,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if err := r.serve(l); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.stop() })
	return r
}

// links returns the rig's links.
func (r *rig) links() []*link {
	var ls []*link
	for _, l := range []*link{r.dynamo, r.manage, r.sqs} {
		if l != nil {
			ls = append(ls, l)
		}
	}
	return ls
}

// injected counts the faults injected since the start: HTTP answers,
// bootstraps killed and restarts (TCP toxics are not counted).
func (r *rig) injected() int {
	n := int(r.kills.Load() + r.restarts.Load())
	for _, l := range r.links() {
		n += l.http.injectedTotal()
	}
	return n
}

// heal removes every fault.
func (r *rig) heal() {
	for _, l := range r.links() {
		l.heal()
	}
}
