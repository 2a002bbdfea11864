// Command demo runs local mode with a simulated organization run, for the
// live demo page that local mode serves at /:
//
//	make demo        # or: go run ./infra/demo [--addr 127.0.0.1:8000] [--step 700ms] [--rounds 0]
//
// WSNOTIFY_ADDR sets the address as it does for local mode; --addr wins.
//
// It prints the page's URL with a generated API key. Once the page (or any
// client of the demo owner) connects, it uploads a few files and runs two
// jobs, one of which fails part way: the jobs' events through the publish
// API with the Go publisher (package publish), as an app's backend
// publishes; the uploads through the Lambda Invoke API, as S3 notifications
// arrive. Then it starts over after a pause, until stopped (Ctrl-C) or
// --rounds rounds.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wsnotify/wsnotify/infra/local/server"
	"github.com/wsnotify/wsnotify/shared/auth"
)

// owner is the demo's one owner.
const owner = "demo"

// shutdownTimeout bounds the graceful shutdown.
const shutdownTimeout = 10 * time.Second

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	args := os.Args[1:]
	if addr, ok := os.LookupEnv("WSNOTIFY_ADDR"); ok {
		args = append([]string{"--addr", addr}, args...) // a later --addr wins
	}
	if err := run(ctx, args, os.Stdout, log); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		log.Error("demo stopped", "err", err)
		os.Exit(1)
	}
}

// options are the command line's.
type options struct {
	addr   string
	step   time.Duration // between two events of the simulation
	pause  time.Duration // between two rounds
	rounds int           // 0: until stopped
}

func parseOptions(args []string) (options, error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8000", "listen address (loopback: the Invoke API takes no credential there)")
	fs.DurationVar(&o.step, "step", 700*time.Millisecond, "pause between two events")
	fs.DurationVar(&o.pause, "pause", 10*time.Second, "pause between two rounds")
	fs.IntVar(&o.rounds, "rounds", 0, "rounds to run (0: until stopped)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if !server.IsLoopbackAddr(o.addr) {
		return o, fmt.Errorf("--addr %s: the demo listens on loopback only", o.addr)
	}
	if o.step < 0 || o.pause < 0 || o.rounds < 0 {
		return o, errors.New("--step, --pause and --rounds must not be negative")
	}
	return o, nil
}

// demo is local mode serving the demo owner, with its key.
type demo struct {
	srv    *server.Server
	base   string // http://host:port
	key    string
	failed <-chan error // Serve's error, should serving fail
	// stop shuts local mode down and returns its error and Serve's; the
	// first call does it, later ones return the same.
	stop func() error
}

// start serves local mode on addr with a new key for the demo owner.
func start(addr string, log *slog.Logger) (*demo, error) {
	key, err := auth.NewKey()
	if err != nil {
		return nil, err
	}
	srv, err := server.New(server.Config{APIKeys: map[string]string{key: owner}, Logger: log})
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	d := &demo{srv: srv, base: "http://" + l.Addr().String(), key: key}
	d.failed, d.stop = srv.Start(l, shutdownTimeout)
	return d, nil
}

// pageURL is the demo page's address with the key in its query string.
func (d *demo) pageURL() string { return d.base + "/?token=" + d.key }

// run serves the demo until ctx ends. stdout gets the page's URL, which
// holds the key: the user's own, generated for this run.
func run(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	opts, err := parseOptions(args)
	if err != nil {
		return err
	}
	d, err := start(opts.addr, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wsnotify demo on %s\n", d.base)
	fmt.Fprintf(stdout, "  Open the page: %s\n", d.pageURL())
	fmt.Fprintf(stdout, "  The run starts when the page connects. Ctrl-C stops.\n")

	sim := newSimulation(d.base, opts.step)
	simDone := make(chan error, 1)
	simCtx, cancelSim := context.WithCancel(ctx)
	defer cancelSim()
	go func() { simDone <- sim.loop(simCtx, d.srv.Store(), opts.rounds, opts.pause, stdout) }()

	select {
	case err := <-d.failed:
		return err
	case <-ctx.Done():
	case err := <-simDone:
		if err != nil {
			_ = d.stop()
			return err
		}
		fmt.Fprintf(stdout, "  All rounds done; the page stays served until Ctrl-C.\n")
		select {
		case err := <-d.failed:
			return err
		case <-ctx.Done():
		}
	}
	cancelSim()
	return d.stop()
}
