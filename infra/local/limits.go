package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wsnotify/wsnotify/infra/local/server"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/push/hub"
)

// Environment variables of the limit flags, one per flag.
const (
	envIdleTimeout    = "WSNOTIFY_IDLE_TIMEOUT"
	envMaxConnection  = "WSNOTIFY_MAX_CONNECTION"
	envQueueMessages  = "WSNOTIFY_QUEUE_MESSAGES"
	envQueueBytes     = "WSNOTIFY_QUEUE_BYTES"
	envConnectRate    = "WSNOTIFY_CONNECT_RATE"
	envConnectBurst   = "WSNOTIFY_CONNECT_BURST"
	envMaxPerOwner    = "WSNOTIFY_MAX_CONNECTIONS_PER_OWNER"
	envAllowedOrigins = "WSNOTIFY_ALLOWED_ORIGINS"
	envHistoryTTL     = "WSNOTIFY_HISTORY_TTL"
	envHistoryMax     = "WSNOTIFY_HISTORY_MAX_EVENTS"
)

// limits are the flags that bound connections: API Gateway's own limits
// (idle timeout, connection age), which local mode enforces so that clients
// meet them on a developer's machine first, and the service's guards (slow
// consumers, connect rate, connections per owner, browser origins).
type limits struct {
	idleTimeout   time.Duration // 0: never
	maxConnection time.Duration // 0: never
	queueMessages int
	queueBytes    byteSize
	connectRate   float64
	connectBurst  int
	maxPerOwner   int
	origins       listFlag
	historyTTL    time.Duration
	historyMax    int
}

// defaultLimits are API Gateway's limits and the core's defaults.
func defaultLimits() limits {
	return limits{
		idleTimeout:   hub.DefaultIdleTimeout,
		maxConnection: hub.DefaultMaxAge,
		queueMessages: hub.DefaultQueueMessages,
		queueBytes:    hub.DefaultQueueBytes,
		connectRate:   notify.DefaultConnectRate,
		connectBurst:  notify.DefaultConnectBurst,
		maxPerOwner:   notify.DefaultMaxConnectionsPerOwner,
		historyTTL:    notify.DefaultHistoryTTL,
		historyMax:    notify.DefaultHistoryMaxEvents,
	}
}

// register defines the limit flags on fs, each defaulting to its
// environment variable and else to defaultLimits. A malformed environment
// value is an error naming the variable.
func (l *limits) register(fs *flag.FlagSet, lookupEnv func(string) (string, bool)) error {
	*l = defaultLimits()
	env := func(name string, parse func(string) error) error {
		v, ok := lookupEnv(name)
		if !ok || strings.TrimSpace(v) == "" {
			return nil
		}
		if err := parse(strings.TrimSpace(v)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	durationInto := func(d *time.Duration) func(string) error {
		return func(s string) (err error) { *d, err = time.ParseDuration(s); return err }
	}
	intInto := func(n *int) func(string) error {
		return func(s string) (err error) { *n, err = strconv.Atoi(s); return err }
	}
	err := errors.Join(
		env(envIdleTimeout, durationInto(&l.idleTimeout)),
		env(envMaxConnection, durationInto(&l.maxConnection)),
		env(envQueueMessages, intInto(&l.queueMessages)),
		env(envQueueBytes, l.queueBytes.Set),
		env(envConnectRate, func(s string) (err error) { l.connectRate, err = strconv.ParseFloat(s, 64); return err }),
		env(envConnectBurst, intInto(&l.connectBurst)),
		env(envMaxPerOwner, intInto(&l.maxPerOwner)),
		env(envHistoryTTL, durationInto(&l.historyTTL)),
		env(envHistoryMax, intInto(&l.historyMax)),
		env(envAllowedOrigins, func(s string) error {
			for _, o := range strings.Split(s, ",") {
				if o = strings.TrimSpace(o); o != "" {
					l.origins.values = append(l.origins.values, o)
				}
			}
			return nil
		}),
	)
	if err != nil {
		return err
	}

	fs.DurationVar(&l.idleTimeout, "idle-timeout", l.idleTimeout,
		"close a connection whose client has sent no message for this long; protocol pings do not count, as on API Gateway; 0: never (env "+envIdleTimeout+")")
	fs.DurationVar(&l.maxConnection, "max-connection", l.maxConnection,
		"close every connection this long after it opened, as API Gateway does at 2h; 0: never (env "+envMaxConnection+")")
	fs.IntVar(&l.queueMessages, "queue-messages", l.queueMessages,
		"a connection's outgoing queue holds at most this many messages; a client that lets it fill is closed as a slow consumer (1013) (env "+envQueueMessages+")")
	fs.Var(&l.queueBytes, "queue-bytes",
		"a connection's outgoing queue holds at most this many `bytes`, whichever of this and --queue-messages is reached first; K/KB/KiB and M/MB/MiB multiply by 1024; at least 128KiB (env "+envQueueBytes+")")
	fs.Float64Var(&l.connectRate, "connect-rate", l.connectRate,
		"connects per second per API key; more are refused with 429 before any store write (env "+envConnectRate+")")
	fs.IntVar(&l.connectBurst, "connect-burst", l.connectBurst,
		"connects per API key allowed at once above the rate (env "+envConnectBurst+")")
	fs.IntVar(&l.maxPerOwner, "max-connections-per-owner", l.maxPerOwner,
		"live connections one owner may hold; more are refused with 403 (env "+envMaxPerOwner+")")
	fs.DurationVar(&l.historyTTL, "history-ttl", l.historyTTL,
		"how long each owner's events are kept for clients that resume after a reconnect (env "+envHistoryTTL+")")
	fs.IntVar(&l.historyMax, "history-max-events", l.historyMax,
		"at most this many of each owner's latest events are kept for resume (env "+envHistoryMax+")")
	fs.Var(&l.origins, "allowed-origin",
		"a browser `origin` allowed to connect, [scheme://]host[:port] with * wildcards"+` ("https://app.example.com", "*.example.com", "localhost:*"); repeatable; replaces `+envAllowedOrigins+
			` ("o1,o2"). None: every origin. A handshake without Origin (a non-browser client) is always allowed`)
	return nil
}

// check refuses values that cannot work, after the flags are parsed.
func (l *limits) check() error {
	var errs []error
	if l.idleTimeout < 0 {
		errs = append(errs, fmt.Errorf("--idle-timeout %v: must be 0 (never) or positive", l.idleTimeout))
	}
	if l.maxConnection < 0 {
		errs = append(errs, fmt.Errorf("--max-connection %v: must be 0 (never) or positive", l.maxConnection))
	}
	if l.queueMessages < 1 {
		errs = append(errs, fmt.Errorf("--queue-messages %d: must be at least 1", l.queueMessages))
	}
	if l.queueBytes < notify.MaxMessageBytes {
		errs = append(errs, fmt.Errorf("--queue-bytes %d: must be at least %d, one message of the largest size", l.queueBytes, notify.MaxMessageBytes))
	}
	if !(l.connectRate > 0) { // also refuses NaN
		errs = append(errs, fmt.Errorf("--connect-rate %v: must be positive", l.connectRate))
	}
	if l.connectBurst < 1 {
		errs = append(errs, fmt.Errorf("--connect-burst %d: must be at least 1", l.connectBurst))
	}
	if l.historyTTL < time.Second {
		errs = append(errs, fmt.Errorf("--history-ttl %v: must be at least 1s", l.historyTTL))
	}
	if l.historyMax < 1 {
		errs = append(errs, fmt.Errorf("--history-max-events %d: must be at least 1", l.historyMax))
	}
	if l.maxPerOwner < 1 {
		errs = append(errs, fmt.Errorf("--max-connections-per-owner %d: must be at least 1", l.maxPerOwner))
	}
	return errors.Join(errs...)
}

// apply sets the limits in a server configuration.
func (l limits) apply(c server.Config) server.Config {
	never := func(d time.Duration) time.Duration {
		if d == 0 {
			return hub.Never // hub.Config reads 0 as "the default"
		}
		return d
	}
	c.Connections.IdleTimeout = never(l.idleTimeout)
	c.Connections.MaxAge = never(l.maxConnection)
	c.Connections.QueueMessages = l.queueMessages
	c.Connections.QueueBytes = int(l.queueBytes)
	c.OriginPatterns = l.origins.values
	c.Notify.ConnectRate = l.connectRate
	c.Notify.ConnectBurst = l.connectBurst
	c.Notify.MaxConnectionsPerOwner = l.maxPerOwner
	c.Notify.HistoryTTL = l.historyTTL
	c.Notify.HistoryMaxEvents = l.historyMax
	return c
}

// byteSize is a flag value in bytes: a plain number, or one with a K or M
// suffix. Both KB and KiB mean 1024 bytes, as API Gateway's "128 KB" does.
type byteSize int

func (b *byteSize) String() string {
	if b == nil {
		return "0"
	}
	return strconv.Itoa(int(*b))
}

func (b *byteSize) Set(s string) error {
	num, unit := s, 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"K", 1 << 10}, {"M", 1 << 20}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(strings.ToUpper(s), strings.ToUpper(u.suffix)); ok {
			num, unit = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || n > (1<<31-1)/unit {
		return fmt.Errorf("%q is not a size in bytes (e.g. 4194304, 4MB, 512KiB)", s)
	}
	*b = byteSize(n * unit)
	return nil
}

// listFlag is a repeatable string flag whose first use on the command line
// replaces the values from the environment, as the command line wins for
// every other flag.
type listFlag struct {
	values  []string
	fromCLI bool
}

func (f *listFlag) String() string {
	if f == nil {
		return ""
	}
	return strings.Join(f.values, ",")
}

func (f *listFlag) Set(v string) error {
	if !f.fromCLI {
		f.values, f.fromCLI = nil, true
	}
	if v = strings.TrimSpace(v); v == "" {
		return errors.New("must not be empty")
	}
	f.values = append(f.values, v)
	return nil
}
