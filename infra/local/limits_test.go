package main

import (
	"context"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/push/hub"
)

// limitsOf is what the limit flags set: the parts of the server
// configuration they are bound to, and the origins.
type limitsOf struct {
	Connections hub.Config
	Notify      notify.Config
	Origins     []string
}

func TestParseConfigReadsTheLimits(t *testing.T) {
	defaults := limitsOf{
		Connections: hub.Config{IdleTimeout: hub.DefaultIdleTimeout, MaxAge: hub.DefaultMaxAge,
			QueueMessages: hub.DefaultQueueMessages, QueueBytes: hub.DefaultQueueBytes},
		Notify: notify.Config{ConnectRate: notify.DefaultConnectRate, ConnectBurst: notify.DefaultConnectBurst,
			MaxConnectionsPerOwner: notify.DefaultMaxConnectionsPerOwner,
			HistoryTTL:             notify.DefaultHistoryTTL, HistoryMaxEvents: notify.DefaultHistoryMaxEvents},
	}
	with := func(change func(*limitsOf)) limitsOf {
		l := defaults
		change(&l)
		return l
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want limitsOf
		err  string
	}{
		{name: "defaults are API Gateway's limits and the core's", want: defaults},
		{name: "the environment sets every limit",
			env: map[string]string{
				envIdleTimeout: "90s", envMaxConnection: "30m", envQueueMessages: "50", envQueueBytes: "1MB",
				envConnectRate: "2.5", envConnectBurst: "7", envMaxPerOwner: "3",
				envAllowedOrigins: "https://a.example.com, *.b.example.com", envHistoryTTL: "2h", envHistoryMax: "500",
			},
			want: limitsOf{
				Connections: hub.Config{IdleTimeout: 90 * time.Second, MaxAge: 30 * time.Minute, QueueMessages: 50, QueueBytes: 1 << 20},
				Notify:      notify.Config{ConnectRate: 2.5, ConnectBurst: 7, MaxConnectionsPerOwner: 3, HistoryTTL: 2 * time.Hour, HistoryMaxEvents: 500},
				Origins:     []string{"https://a.example.com", "*.b.example.com"}}},
		{name: "flags win over the environment, and --allowed-origin replaces its list",
			args: []string{"--idle-timeout", "1m", "--max-connection", "1h", "--queue-messages", "9", "--queue-bytes", "512KiB",
				"--connect-rate", "1", "--connect-burst", "2", "--max-connections-per-owner", "4",
				"--allowed-origin", "https://c.example.com", "--allowed-origin", "localhost:*",
				"--history-ttl", "30m", "--history-max-events", "20"},
			env: map[string]string{envIdleTimeout: "90s", envQueueBytes: "1MB", envAllowedOrigins: "https://a.example.com", envHistoryMax: "500"},
			want: limitsOf{
				Connections: hub.Config{IdleTimeout: time.Minute, MaxAge: time.Hour, QueueMessages: 9, QueueBytes: 512 << 10},
				Notify:      notify.Config{ConnectRate: 1, ConnectBurst: 2, MaxConnectionsPerOwner: 4, HistoryTTL: 30 * time.Minute, HistoryMaxEvents: 20},
				Origins:     []string{"https://c.example.com", "localhost:*"}}},
		{name: "never turns the idle timeout and the connection age off",
			args: []string{"--idle-timeout", "never"}, env: map[string]string{envMaxConnection: "never"},
			want: with(func(l *limitsOf) { l.Connections.IdleTimeout, l.Connections.MaxAge = hub.Never, hub.Never })},
		{name: "0 is refused, not taken for never nor for the default", args: []string{"--idle-timeout", "0"}, err: "or never"},
		{name: "queue bytes take a plain number", args: []string{"--queue-bytes", "200000"},
			want: with(func(l *limitsOf) { l.Connections.QueueBytes = 200000 })},
		{name: "a malformed environment duration names its variable",
			env: map[string]string{envIdleTimeout: "ten minutes"}, err: envIdleTimeout},
		{name: "a malformed environment number names its variable",
			env: map[string]string{envConnectBurst: "many"}, err: envConnectBurst},
		{name: "a negative duration is refused", args: []string{"--max-connection", "-1s"}, err: "-max-connection"},
		{name: "a queue that cannot hold one message of 128 KB is refused", args: []string{"--queue-bytes", "64KB"}, err: "--queue-bytes"},
		{name: "a size that is not one is refused", args: []string{"--queue-bytes", "lots"}, err: "queue-bytes"},
		{name: "an empty queue is refused", args: []string{"--queue-messages", "0"}, err: "--queue-messages"},
		{name: "a zero rate is refused", args: []string{"--connect-rate", "0"}, err: "--connect-rate"},
		{name: "a zero burst is refused", args: []string{"--connect-burst", "0"}, err: "--connect-burst"},
		{name: "a zero cap is refused", args: []string{"--max-connections-per-owner", "0"}, err: "--max-connections-per-owner"},
		{name: "an empty origin is refused", args: []string{"--allowed-origin", " "}, err: "allowed-origin"},
		{name: "a history of no events is refused", args: []string{"--history-max-events", "0"}, err: "--history-max-events"},
		{name: "a history kept for no time is refused", args: []string{"--history-ttl", "0s"}, err: "--history-ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(tt.args, envOf(tt.env))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := limitsOf{Connections: cfg.server.Connections, Notify: cfg.server.Notify, Origins: cfg.origins.values}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("limits = %+v\nwant     %+v", got, tt.want)
			}
		})
	}
}

// refusedWith dials local mode at addr and returns the refusal's status and
// body, failing the test if the connection is accepted.
func refusedWith(t *testing.T, addr, clientID, token, origin string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), processWait)
	defer cancel()
	opts := &websocket.DialOptions{HTTPHeader: http.Header{}}
	if origin != "" {
		opts.HTTPHeader.Set("Origin", origin)
	}
	c, resp, err := asyncapi.Dial(ctx, "ws://"+addr+"/api/v1/ws/"+clientID+"?token="+token, opts)
	if err == nil {
		c.CloseNow()
		t.Fatalf("%s connected, want a refusal", clientID)
	}
	if resp == nil {
		t.Fatalf("%s: %v", clientID, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestTheLimitFlagsReachLocalMode(t *testing.T) {
	t.Parallel()
	const owner = "acct_limits"
	t.Run("connect rate, owner cap and origins", func(t *testing.T) {
		t.Parallel()
		r := runLocalMode(t, nil,
			"--api-key", "wsn_k1="+owner, "--api-key", "wsn_k2="+owner, "--api-key", "wsn_k3="+owner,
			"--connect-rate", "0.001", "--connect-burst", "1", "--max-connections-per-owner", "2",
			"--allowed-origin", "https://app.example.com")
		dialLocal(t, r.addr, "one", "wsn_k1")
		if status, body := refusedWith(t, r.addr, "two", "wsn_k1", ""); status != http.StatusTooManyRequests || !strings.Contains(body, "RATE_LIMITED") {
			t.Errorf("over the burst: %d %s, want 429", status, body)
		}
		dialLocal(t, r.addr, "two", "wsn_k2")
		if status, body := refusedWith(t, r.addr, "three", "wsn_k3", ""); status != http.StatusForbidden || !strings.Contains(body, "limit of 2 live connections") {
			t.Errorf("over the owner cap: %d %s, want 403 naming the limit", status, body)
		}
		if status, body := refusedWith(t, r.addr, "four", "wsn_k3", "https://evil.example.com"); status != http.StatusForbidden || !strings.Contains(body, "origin") {
			t.Errorf("another origin: %d %s, want 403", status, body)
		}
	})
	for _, tt := range []struct {
		flag, reason string
		active       bool // the client sends ping actions meanwhile
	}{
		{"--idle-timeout", "idle timeout", false},
		{"--max-connection", "maximum connection age", true},
	} {
		t.Run(tt.flag+" closes the connection with 1001 "+tt.reason, func(t *testing.T) {
			t.Parallel()
			r := runLocalMode(t, nil, "--api-key", "wsn_k1="+owner, tt.flag, "500ms")
			c := dialLocal(t, r.addr, "short", "wsn_k1")
			ctx, cancel := context.WithTimeout(context.Background(), processWait)
			defer cancel()
			pinging := make(chan struct{})
			go func() {
				defer close(pinging)
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for tt.active {
					<-tick.C
					if c.Write(ctx, websocket.MessageText, []byte(`{"action":"ping"}`)) != nil {
						return // closed
					}
				}
			}()
			ce, err := closeCode(ctx, c)
			cancel()
			<-pinging
			if err != nil || ce.Code != websocket.StatusGoingAway || ce.Reason != tt.reason {
				t.Fatalf("closed with %v, %v; want 1001 %s", ce, err, tt.reason)
			}
			waitLogged(t, r.logs, "msg=disconnected", "clientId=short ")
		})
	}
}
