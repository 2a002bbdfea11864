// Command local runs wsnotify on one machine: the seed's WebSocket endpoint,
// the Lambda Invoke API for job and upload events, and the API Gateway
// Management API, all in one process over an in-memory store.
//
//	go run ./infra/local [--addr 127.0.0.1:8000] [--api-key KEY=OWNER ...]
//
// Every flag can also be set through an environment variable (see flags).
// With no API key given it creates one for the owner "acct_42", the owner of
// the sample events in events/, and prints a ready-to-use connect URL and a
// curl line that fires a new event each time it runs.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/wsnotify/wsnotify/infra/local/server"
	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/event"
)

// Environment variables, one per flag.
const (
	envAddr         = "WSNOTIFY_ADDR"
	envAPIKeys      = "WSNOTIFY_API_KEYS"
	envControlToken = "WSNOTIFY_CONTROL_TOKEN"
)

// devOwner owns the key generated when none is given: the owner the sample
// events in events/ are for, so that they reach a client connected with it.
const devOwner = "acct_42"

// shutdownTimeout bounds the graceful shutdown: WebSocket close handshakes
// (5 s each at most, run in parallel) and the $disconnect of each connection.
const shutdownTimeout = 15 * time.Second

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal the default handling returns, so a second
	// Ctrl-C ends a shutdown that takes too long.
	context.AfterFunc(ctx, stop)
	if err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, log); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		log.Error("local mode stopped", "err", err)
		os.Exit(1)
	}
}

// config is what the command line and the environment configure.
type config struct {
	addr         string
	controlToken secretValue // the control plane's credential (control.go in server)
	apiKeys      listFlag    // KEY=OWNER
	origins      listFlag    // --allowed-origin
	// server is local mode's configuration, the limit flags bound straight
	// to its fields (limits.go); the rest is set from the fields below.
	server  server.Config
	backend backend // store and function endpoints (backend.go)
	tokens  tokens  // signed tokens (tokens.go)
}

// keys returns the API keys given, key → owner.
func (c *config) keys() map[string]string { return c.apiKeys.pairs() }

// run parses the configuration, serves until ctx ends (SIGINT or SIGTERM),
// then shuts down gracefully. stdout receives the start-up banner, whose
// first line names the address; log receives everything else.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout io.Writer, log *slog.Logger) error {
	m, err := start(ctx, args, lookupEnv, stdout, log)
	if err != nil {
		return err
	}
	return m.wait(ctx)
}

// localMode is local mode started: its server serving on its listener.
type localMode struct {
	srv    *server.Server
	addr   string       // host:port it listens on
	failed <-chan error // Serve's error, should serving fail
	stop   func() error // shuts down gracefully (server.Start)
	log    *slog.Logger
}

// start configures local mode, listens, prints the banner and starts
// serving; wait runs it to its end.
func start(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout io.Writer, log *slog.Logger) (*localMode, error) {
	return startOn(ctx, nil, args, lookupEnv, stdout, log)
}

// startOn is start on l, a listener already open on --addr's address, or on
// a listener of its own when l is nil. A test that must tell other
// processes local mode's address before it starts opens l first, so that
// nothing can take the port in between.
func startOn(ctx context.Context, l net.Listener, args []string, lookupEnv func(string) (string, bool), stdout io.Writer, log *slog.Logger) (*localMode, error) {
	cfg, err := parseConfig(args, lookupEnv)
	if err != nil {
		return nil, err
	}
	if err := cfg.backend.open(ctx, log); err != nil {
		return nil, err
	}
	generated, keys := "", cfg.keys()
	if len(keys) == 0 {
		key, err := auth.NewKey()
		if err != nil {
			return nil, err
		}
		generated = key
		keys = map[string]string{key: devOwner}
	}

	cfg.tokens.warnEndpoint(log, cfg.backend.functions.pairs())
	cfg.server.APIKeys, cfg.server.ControlToken, cfg.server.Logger = keys, string(cfg.controlToken), log
	cfg.server.OriginPatterns = cfg.origins.values
	cfg.backend.apply(&cfg.server)
	cfg.tokens.apply(&cfg.server)
	srv, err := server.New(cfg.server)
	if err != nil {
		return nil, fmt.Errorf("configure local mode: %w", err)
	}
	if l == nil {
		if l, err = net.Listen("tcp", cfg.addr); err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
	}
	if !server.IsLoopbackAddr(cfg.addr) {
		log.Warn("listening beyond loopback: the WebSocket endpoint is reachable from the network; the Invoke and Management APIs require the control token",
			"addr", l.Addr().String())
	}
	printBanner(stdout, l.Addr().String(), generated, keys, cfg.origins.values)
	cfg.backend.printBanner(stdout)
	cfg.tokens.printBanner(stdout)

	m := &localMode{srv: srv, addr: l.Addr().String(), log: log}
	m.failed, m.stop = srv.Start(l, shutdownTimeout)
	return m, nil
}

// wait serves until ctx ends or serving fails, then shuts down gracefully.
func (m *localMode) wait(ctx context.Context) error {
	select {
	case err := <-m.failed:
		return err
	case <-ctx.Done():
	}
	m.log.Info("shutting down")
	return m.stop()
}

// parseConfig reads the flags, each defaulting to its environment variable.
func parseConfig(args []string, lookupEnv func(string) (string, bool)) (config, error) {
	cfg := config{addr: "127.0.0.1:8000"}
	fs := newFlags()
	fs.stringVar(&cfg.addr, "addr", envAddr, "listen address")
	fs.value(&cfg.controlToken, "control-token", envControlToken, "the credential the Invoke and Management APIs require as \"Authorization: Bearer …\"; needed when --addr is not loopback")
	cfg.apiKeys = listFlag{secret: true, check: pair("KEY=OWNER", func(key, _ string) error {
		if auth.IsSignedToken(key) {
			// The service would check it as a signed token and never find it.
			return errors.New("an API key must not have a signed token's shape (three dot-separated base64url parts)")
		}
		return nil
	})}
	fs.value(&cfg.apiKeys, "api-key", envAPIKeys, "an API key and its owner, KEY=OWNER; repeatable. None: one is generated for owner "+devOwner)
	defineLimits(fs, &cfg.server, &cfg.origins)
	cfg.backend.define(fs)
	cfg.tokens.define(fs)
	if err := fs.parse(args, lookupEnv); err != nil {
		return config{}, err
	}
	if err := checkLimits(cfg.server); err != nil {
		return config{}, err
	}
	if err := cfg.backend.check(len(cfg.apiKeys.values) > 0); err != nil {
		return config{}, err
	}
	token := cfg.controlToken
	if token != "" {
		if err := server.CheckControlToken(string(token)); err != nil {
			return config{}, fmt.Errorf("--control-token: %w", err)
		}
	}
	if !server.IsLoopbackAddr(cfg.addr) && token == "" {
		return config{}, fmt.Errorf("--addr %s is not a loopback address: anyone who reaches it could publish to any owner through the Invoke and Management APIs, so give them a credential with --control-token (or %s)", cfg.addr, envControlToken)
	}
	if err := cfg.tokens.check(); err != nil {
		return config{}, err
	}
	return cfg, nil
}

// printBanner tells the user where local mode listens, how to connect, how
// to fire an event at a connected client, and which browser origins may
// connect. A generated key is printed here, once, on stdout: it is the user's
// own development key and they need it to connect. It never goes to the log.
// A key the user gave is never printed: a placeholder stands for it.
func printBanner(w io.Writer, addr, generatedKey string, keys map[string]string, origins []string) {
	fmt.Fprintf(w, "wsnotify local mode on http://%s\n", addr)
	token, owner := generatedKey, devOwner
	if generatedKey == "" {
		owners := make([]string, 0, len(keys))
		for _, o := range keys {
			if !slices.Contains(owners, o) {
				owners = append(owners, o)
			}
		}
		sort.Strings(owners)
		token, owner = "<API key>", owners[0]
		fmt.Fprintf(w, "  API keys for: %s\n", strings.Join(owners, ", "))
	} else {
		fmt.Fprintf(w, "  No --api-key given: generated a development key.\n")
		fmt.Fprintf(w, "  Owner:    %s\n", devOwner)
	}
	url := fmt.Sprintf("ws://%s/api/v1/ws/%s?token=%s", addr, newUUID(), token)
	fmt.Fprintf(w, "  Connect:  %s\n", url)
	fmt.Fprintf(w, "  Node.js:  node infra/node/seed-client.js %s   (prints each event; after make tools)\n", shellQuote(url))
	fmt.Fprintf(w, "  Fire an event at %s's connections:\n    %s\n", owner, fireCommand(addr, owner))
	fmt.Fprintf(w, "  Publish API: %s\n", publishCommand(addr, owner))
	fmt.Fprintf(w, "  One client: curl -s --data '<message>' http://%s/@connections/<connectionId> (ids: the log's \"connected\" lines)\n", addr)
	if len(origins) == 0 {
		fmt.Fprintf(w, "  Origins:  any origin (restrict with --allowed-origin)\n")
	} else {
		fmt.Fprintf(w, "  Origins:  %s, and clients that send no Origin (not browsers)\n", strings.Join(origins, ", "))
	}
}

// fireCommand is a curl line that publishes a job_progress event to owner
// through the Invoke API, as an SQS batch of one message, the shape the job
// events function receives from its queue in the cloud. The shell gives the
// message a new id each time the line runs: a message id seen before is a
// redelivery, which the service pushes again as the same event (same id,
// same seq), where the user firing the line wants a new one.
func fireCommand(addr, owner string) string {
	envelope := progressMessage(owner, 65, "document.pdf")
	type record struct {
		MessageID string `json:"messageId"`
		Body      string `json:"body"`
	}
	batch, _ := json.Marshal(struct {
		Records []record `json:"Records"`
	}{[]record{{MessageID: messageIDSlot, Body: string(envelope)}}})
	// The slot leaves the single quotes for a command substitution: the
	// time in nanoseconds (GNU date; elsewhere in seconds, with an N).
	data := strings.Replace(shellQuote(string(batch)), messageIDSlot, `local-'"$(date +%s%N)"'`, 1)
	return fmt.Sprintf("curl -s http://%s/2015-03-31/functions/JobEventsFunction/invocations -d %s", addr, data)
}

// publishCommand is a curl line that publishes a job_progress event to
// owner through the publish API (docs/openapi.yaml), which answers with the
// event's id, seq and how many connections got it. Each run is a new event:
// it carries no idempotency key.
func publishCommand(addr, owner string) string {
	msg := progressMessage(owner, 80, "report.pdf")
	return fmt.Sprintf("curl -s http://%s/v1/publish -d %s", addr, shellQuote(string(msg)))
}

// progressMessage is a message of the banner's lines: job_123's progress at
// pct percent of 100 files, for owner.
func progressMessage(owner string, pct int64, file string) []byte {
	msg, _ := json.Marshal(struct {
		OwnerID string      `json:"ownerId"`
		Event   event.Event `json:"event"`
	}{owner, event.JobProgress{Type: event.TypeJobProgress, JobID: "job_123", Progress: float64(pct),
		ProcessedCount: pct, TotalCount: 100, CurrentFile: file}})
	return msg
}

// messageIDSlot stands for the fire line's message id until the shell's
// command substitution replaces it.
const messageIDSlot = "MESSAGE_ID_SLOT"

// shellQuote quotes s as one word for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// newUUID returns a random (version 4) UUID, the kind of client id the
// seed's examples use (crypto.randomUUID()).
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
