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

	fs.value(limit{&c.Connections.IdleTimeout}, "idle-timeout", envIdleTimeout,
		"close a connection whose client has sent no message for this long; protocol pings do not count, as on API Gateway; never: no limit")
	fs.value(limit{&c.Connections.MaxAge}, "max-connection", envMaxConnection,
		"close every connection this long after it opened, as API Gateway does at 2h; never: no limit")
	fs.intVar(&c.Connections.QueueMessages, "queue-messages", envQueueMessages,
		"a connection's outgoing queue holds at most this many messages; a client that lets it fill is closed as a slow consumer (1013)")
	fs.value(byteSize{&c.Connections.QueueBytes}, "queue-bytes", envQueueBytes,
		"a connection's outgoing queue holds at most this many `bytes`, whichever of this and --queue-messages is reached first; K/KB/KiB and M/MB/MiB multiply by 1024; at least 128KiB")
	fs.float64Var(&c.Notify.ConnectRate, "connect-rate", envConnectRate,
		"connects per second per API key (per owner for signed tokens); more are refused with 429 before any store write")
	fs.intVar(&c.Notify.ConnectBurst, "connect-burst", envConnectBurst,
		"connects per API key allowed at once above the rate")
	fs.intVar(&c.Notify.MaxConnectionsPerOwner, "max-connections-per-owner", envMaxPerOwner,
		"live connections one owner may hold; more are refused with 403")
	fs.durationVar(&c.Notify.HistoryTTL, "history-ttl", envHistoryTTL,
		"how long each owner's events are kept for clients that resume after a reconnect")
	fs.intVar(&c.Notify.HistoryMaxEvents, "history-max-events", envHistoryMax,
		"at most this many of each owner's latest events are kept for resume")
	fs.value(origins, "allowed-origin", envAllowedOrigins,
		"a browser `origin` allowed to connect, [scheme://]host[:port] with * wildcards"+` ("https://app.example.com", "*.example.com", "localhost:*"); repeatable. None: every origin. A handshake without Origin (a non-browser client) is always allowed`)
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
