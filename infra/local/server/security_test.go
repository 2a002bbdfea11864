package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/infra/local/server"
	"github.com/wsnotify/wsnotify/shared/store/memory"
)

// dialFrom dials the seed's endpoint as a page of origin would; an empty
// origin sends no Origin header, as a non-browser client does.
func (h *harness) dialFrom(clientID, token, origin string) (*asyncapi.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	header := http.Header{}
	if origin != "" {
		header.Set("Origin", origin)
	}
	return asyncapi.Dial(ctx, "ws://"+h.host+"/api/v1/ws/"+clientID+"?token="+token, &websocket.DialOptions{HTTPHeader: header})
}

// TestTheOriginAllowListRefusesOtherSitesBeforeConnect runs the $connect
// handler's allow-list (shared/handler.Origins) through a real handshake:
// the browser sees 403 before any upgrade, and the key and store are never
// read.
func TestTheOriginAllowListRefusesOtherSitesBeforeConnect(t *testing.T) {
	t.Parallel()
	st := &countingStore{Store: memory.New()}
	cfg := twoOwners()
	cfg.Store = st
	cfg.OriginPatterns = []string{"https://app.example.com", "*.trusted.test"}
	h := start(t, cfg)

	tests := []struct {
		name, origin string
		allowed      bool
	}{
		{"an origin on the list with its scheme", "https://app.example.com", true},
		{"an origin matching a host pattern, any scheme", "http://eu.trusted.test", true},
		{"a host pattern without a port, from a port", "https://eu.trusted.test:8443", false},
		{"a page claiming local mode's own host (DNS rebinding)", "http://" + h.host, false},
		// Browsers always send Origin; a client that does not is no browser,
		// and could forge any Origin it liked: the key guards it, not the list.
		{"no Origin header (a non-browser client)", "", true},
		{"another site", "https://evil.example.com", false},
		{"a listed host under another scheme", "http://app.example.com", false},
		{"a look-alike host", "https://app.example.com.evil.test", false},
		{"the opaque origin of a sandboxed or file:// page", "null", false},
	}
	for i, tt := range tests {
		verdict := "is refused with 403 before $connect"
		if tt.allowed {
			verdict = "connects"
		}
		t.Run(tt.name+" "+verdict, func(t *testing.T) {
			clientID := "c" + string(rune('a'+i))
			lookups, writes := st.lookups.Load(), st.writes.Load()
			c, resp, err := h.dialFrom(clientID, keyA, tt.origin)
			if tt.allowed {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				c.CloseNow()
				return
			}
			if err == nil {
				c.CloseNow()
				t.Fatal("connected")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("response %v, err %v; want 403", resp, err)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			// These are exact: the test's subtests run one after another.
			if st.lookups.Load() != lookups || st.writes.Load() != writes {
				t.Errorf("$connect ran: %d key lookups, %d store writes", st.lookups.Load()-lookups, st.writes.Load()-writes)
			}
			if h.hasRecord(t, ownerA, clientID) {
				t.Error("a record was stored")
			}
		})
	}
}

func TestWithoutAnAllowListEveryOriginConnectsAsOnAPIGateway(t *testing.T) {
	t.Parallel()
	h := start(t, twoOwners())
	c, _, err := h.dialFrom("anywhere", keyA, "https://evil.example.com")
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	c.CloseNow()
}

func TestAMalformedOriginPatternIsRefusedAtStart(t *testing.T) {
	t.Parallel()
	_, err := server.New(server.Config{OriginPatterns: []string{"https://[app.example.com"}, Logger: testLogger()})
	if err == nil || !strings.Contains(err.Error(), "origin pattern") {
		t.Fatalf("err = %v", err)
	}
}

// The allow-list is the $connect handler's: a ConnectFunction running
// elsewhere would never see local mode's list, so the two are not combined.
func TestOriginPatternsWithARemoteConnectFunctionAreRefusedAtStart(t *testing.T) {
	t.Parallel()
	_, err := server.New(server.Config{OriginPatterns: []string{"https://app.example.com"}, Logger: testLogger(),
		FunctionEndpoints: map[string]string{server.ConnectFunction: "http://127.0.0.1:1/2015-03-31/functions/function/invocations"}})
	if err == nil || !strings.Contains(err.Error(), "ALLOWED_ORIGINS") {
		t.Fatalf("err = %v, want one pointing at ALLOWED_ORIGINS", err)
	}
}
