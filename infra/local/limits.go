package main

import (
	"errors"
	"fmt"
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

// defineLimits binds the flags that bound connections straight to the
// fields of c they set, starting from their defaults: API Gateway's own
// limits (idle timeout, connection age), which local mode enforces so that
// clients meet them on a developer's machine first, the service's guards
// (slow consumers, connect rate, connections per owner, browser origins)
// and the history kept for resume. origins receives --allowed-origin.
func defineLimits(fs *flags, c *server.Config, origins *listFlag) {
	c.Connections.IdleTimeout = hub.DefaultIdleTimeout
	c.Connections.MaxAge = hub.DefaultMaxAge
	c.Connections.QueueMessages = hub.DefaultQueueMessages
	c.Connections.QueueBytes = hub.DefaultQueueBytes
	c.Notify.ConnectRate = notify.DefaultConnectRate
	c.Notify.ConnectBurst = notify.DefaultConnectBurst
	c.Notify.MaxConnectionsPerOwner = notify.DefaultMaxConnectionsPerOwner
	c.Notify.HistoryTTL = notify.DefaultHistoryTTL
	c.Notify.HistoryMaxEvents = notify.DefaultHistoryMaxEvents

	fs.Var(limit{&c.Connections.IdleTimeout}, "idle-timeout",
		"close a connection whose client has sent no message for this long; protocol pings do not count, as on API Gateway; never: no limit")
	fs.env("idle-timeout", envIdleTimeout)
	fs.Var(limit{&c.Connections.MaxAge}, "max-connection",
		"close every connection this long after it opened, as API Gateway does at 2h; never: no limit")
	fs.env("max-connection", envMaxConnection)
	fs.IntVar(&c.Connections.QueueMessages, "queue-messages", c.Connections.QueueMessages,
		"a connection's outgoing queue holds at most this many messages; a client that lets it fill is closed as a slow consumer (1013)")
	fs.env("queue-messages", envQueueMessages)
	fs.Var(byteSize{&c.Connections.QueueBytes}, "queue-bytes",
		"a connection's outgoing queue holds at most this many `bytes`, whichever of this and --queue-messages is reached first; K/KB/KiB and M/MB/MiB multiply by 1024; at least 128KiB")
	fs.env("queue-bytes", envQueueBytes)
	fs.Float64Var(&c.Notify.ConnectRate, "connect-rate", c.Notify.ConnectRate,
		"connects per second per API key (per owner for signed tokens); more are refused with 429 before any store write")
	fs.env("connect-rate", envConnectRate)
	fs.IntVar(&c.Notify.ConnectBurst, "connect-burst", c.Notify.ConnectBurst,
		"connects per API key allowed at once above the rate")
	fs.env("connect-burst", envConnectBurst)
	fs.IntVar(&c.Notify.MaxConnectionsPerOwner, "max-connections-per-owner", c.Notify.MaxConnectionsPerOwner,
		"live connections one owner may hold; more are refused with 403")
	fs.env("max-connections-per-owner", envMaxPerOwner)
	fs.DurationVar(&c.Notify.HistoryTTL, "history-ttl", c.Notify.HistoryTTL,
		"how long each owner's events are kept for clients that resume after a reconnect")
	fs.env("history-ttl", envHistoryTTL)
	fs.IntVar(&c.Notify.HistoryMaxEvents, "history-max-events", c.Notify.HistoryMaxEvents,
		"at most this many of each owner's latest events are kept for resume")
	fs.env("history-max-events", envHistoryMax)
	fs.Var(origins, "allowed-origin",
		"a browser `origin` allowed to connect, [scheme://]host[:port] with * wildcards"+` ("https://app.example.com", "*.example.com", "localhost:*"); repeatable. None: every origin. A handshake without Origin (a non-browser client) is always allowed`)
	fs.env("allowed-origin", envAllowedOrigins)
}

// checkLimits refuses values that cannot work, after the flags are parsed.
// (--idle-timeout and --max-connection refuse theirs as they are read.)
func checkLimits(c server.Config) error {
	var errs []error
	if c.Connections.QueueMessages < 1 {
		errs = append(errs, fmt.Errorf("--queue-messages %d: must be at least 1", c.Connections.QueueMessages))
	}
	if c.Connections.QueueBytes < notify.MaxMessageBytes {
		errs = append(errs, fmt.Errorf("--queue-bytes %d: must be at least %d, one message of the largest size", c.Connections.QueueBytes, notify.MaxMessageBytes))
	}
	if !(c.Notify.ConnectRate > 0) { // also refuses NaN
		errs = append(errs, fmt.Errorf("--connect-rate %v: must be positive", c.Notify.ConnectRate))
	}
	if c.Notify.ConnectBurst < 1 {
		errs = append(errs, fmt.Errorf("--connect-burst %d: must be at least 1", c.Notify.ConnectBurst))
	}
	if c.Notify.MaxConnectionsPerOwner < 1 {
		errs = append(errs, fmt.Errorf("--max-connections-per-owner %d: must be at least 1", c.Notify.MaxConnectionsPerOwner))
	}
	if c.Notify.HistoryTTL < time.Second {
		errs = append(errs, fmt.Errorf("--history-ttl %v: must be at least 1s", c.Notify.HistoryTTL))
	}
	if c.Notify.HistoryMaxEvents < 1 {
		errs = append(errs, fmt.Errorf("--history-max-events %d: must be at least 1", c.Notify.HistoryMaxEvents))
	}
	return errors.Join(errs...)
}
