package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/local/server"
	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/store"
	"github.com/wsnotify/wsnotify/shared/store/memory"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// revokeWait bounds every wait of the revocation tests.
const revokeWait = 20 * time.Second

// runNow runs the command as invoke does, with the real clock: the
// connections it lists are live now.
func runNow(t *testing.T, env map[string]string, open func(context.Context, string, string) (keyStore, error), args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut strings.Builder
	c := cli{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(k string) string { return env[k] }, now: time.Now, openStore: open}
	ctx, cancel := context.WithTimeout(context.Background(), revokeWait)
	defer cancel()
	err = c.run(ctx, args)
	return out.String(), errOut.String(), err
}

// TestRevokeClosesTheKeysConnectionsInLocalMode revokes a key while clients
// are connected with it, with another key of the same owner, and with
// another owner's key, to local mode on dynalite, the table the tool edits.
func TestRevokeClosesTheKeysConnectionsInLocalMode(t *testing.T) {
	endpoint := testenv.Dynalite(t)
	ctx, cancel := context.WithTimeout(context.Background(), revokeWait)
	defer cancel()
	st, err := server.OpenDynamoDB(ctx, server.DynamoDB{Endpoint: endpoint, Table: "revoke", CreateTable: true})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{"revoked": "", "kept": "", "other": ""}
	owners := map[string]string{"revoked": "acct_1", "kept": "acct_1", "other": "acct_2"}
	for name := range keys {
		key, err := auth.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = key
		if err := st.PutKey(ctx, auth.NewKeyRecord(key, owners[name], name, time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := server.New(server.Config{Store: st, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, stop := srv.Start(l, revokeWait)
	t.Cleanup(func() { _ = stop() })
	host := l.Addr().String()

	dial := func(clientID, key string) (*websocket.Conn, *http.Response, error) {
		return websocket.Dial(ctx, "ws://"+host+"/api/v1/ws/"+clientID+"?token="+url.QueryEscape(key), nil)
	}
	clients := map[string]*websocket.Conn{}
	for _, name := range []string{"revoked", "kept", "other"} {
		c, _, err := dial("tab-"+name, keys[name])
		if err != nil {
			t.Fatalf("connect with the %s key: %v", name, err)
		}
		t.Cleanup(func() { _ = c.CloseNow() })
		clients[name] = c
	}
	// A second connection of the revoked key, of another client.
	second, _, err := dial("tab-revoked-2", keys["revoked"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = second.CloseNow() })

	env := map[string]string{envTable: "revoke", envEndpoint: endpoint}
	stdout, stderr, err := runNow(t, env, nil, "revoke", "--hash", auth.Prefix(auth.Hash(keys["revoked"])),
		"--management-endpoint", "http://"+host+"/local")
	if err != nil {
		t.Fatalf("revoke: %v (%s)", err, stderr)
	}
	if !strings.Contains(stdout, "closed 2 connections of the key\n") {
		t.Fatalf("revoke said %q, want it to have closed 2 connections", stdout)
	}

	for _, c := range []*websocket.Conn{clients["revoked"], second} {
		readCtx, cancel := context.WithTimeout(ctx, revokeWait)
		_, _, err := c.Read(readCtx)
		cancel()
		// API Gateway's DeleteConnection takes no close code: its close is
		// a normal one, and so is local mode's.
		if status := websocket.CloseStatus(err); status != websocket.StatusNormalClosure {
			t.Fatalf("the revoked key's connection read %v, want a close with 1000", err)
		}
	}
	for _, name := range []string{"kept", "other"} {
		if err := clients[name].Write(ctx, websocket.MessageText, []byte(`{"action":"ping"}`)); err != nil {
			t.Fatalf("the %s key's connection: %v", name, err)
		}
		readCtx, cancel := context.WithTimeout(ctx, revokeWait)
		_, msg, err := clients[name].Read(readCtx)
		cancel()
		if err != nil || !strings.Contains(string(msg), `"pong"`) {
			t.Fatalf("the %s key's connection answered %s, %v; want a pong: it stays open", name, msg, err)
		}
	}
	// The closed connections ran their $disconnect: only the kept key's record is left.
	testenv.Eventually(t, revokeWait, "the closed connections' records to go", func() bool {
		conns, err := st.ListConnections(ctx, "acct_1", time.Now())
		return err == nil && len(conns) == 1 && conns[0].ClientID == "tab-kept"
	})
	if _, resp, err := dial("tab-revoked", keys["revoked"]); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a connect with the revoked key = %v, want 401", err)
	}

	stdout, _, err = runNow(t, env, nil, "revoke", "--hash", auth.Prefix(auth.Hash(keys["revoked"])), "--management-endpoint", "http://"+host+"/local")
	if err != nil || !strings.Contains(stdout, "(it already was)") || !strings.Contains(stdout, "closed 0 connections") {
		t.Fatalf("revoke again = %q, %v; want nothing left to close", stdout, err)
	}
}

// TestRevokeReportsWhatItCouldNotClose revokes keys of connections that a
// fake Management API answers for, on the embedded store.
func TestRevokeReportsWhatItCouldNotClose(t *testing.T) {
	const keyA, keyB = "wsn_revoke_a", "wsn_revoke_b"
	setup := func(t *testing.T) (func(context.Context, string, string) (keyStore, error), *memory.Store) {
		mem := memory.New()
		now := time.Now()
		for i, key := range []string{keyA, keyA, keyA, keyB} {
			if i == 0 {
				if err := mem.PutKey(context.Background(), auth.NewKeyRecord(keyA, "acct_1", "", now)); err != nil {
					t.Fatal(err)
				}
				if err := mem.PutKey(context.Background(), auth.NewKeyRecord(keyB, "acct_1", "", now)); err != nil {
					t.Fatal(err)
				}
			}
			c := store.Connection{OwnerID: "acct_1", ClientID: fmt.Sprint("tab-", i), ConnectionID: fmt.Sprintf("Conn%011d=", i),
				KeyID: auth.Prefix(auth.Hash(key)), ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}
			if err := mem.PutConnection(context.Background(), c, now); err != nil {
				t.Fatal(err)
			}
		}
		return func(context.Context, string, string) (keyStore, error) { return mem, nil }, mem
	}
	env := map[string]string{envTable: "conns", envEndpoint: "http://127.0.0.1:1"}

	t.Run("without a Management API the open connections are counted", func(t *testing.T) {
		open, _ := setup(t)
		stdout, stderr, err := runNow(t, env, open, "revoke", "--hash", auth.Hash(keyA))
		if err != nil || !strings.Contains(stdout, "revoked key") || !strings.Contains(stderr, "3 connections of the key stay open") {
			t.Fatalf("revoke = %q, %q, %v", stdout, stderr, err)
		}
	})
	t.Run("each of the key's connections is deleted, gone ones are told apart, failures fail the command", func(t *testing.T) {
		open, _ := setup(t)
		var mu sync.Mutex
		var deleted []string
		mgmt := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := strings.TrimPrefix(r.URL.Path, "/prod/@connections/")
			mu.Lock()
			deleted = append(deleted, r.Method+" "+id)
			mu.Unlock()
			switch id {
			case "Conn00000000001=":
				w.Header().Set("x-amzn-ErrorType", "GoneException")
				w.WriteHeader(http.StatusGone)
				fmt.Fprint(w, `{"message":"Gone"}`)
			case "Conn00000000002=":
				w.Header().Set("x-amzn-ErrorType", "ForbiddenException")
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprint(w, `{"message":"Forbidden"}`)
			default:
				w.WriteHeader(http.StatusNoContent)
			}
		}))
		defer mgmt.Close()
		stdout, _, err := runNow(t, env, open, "revoke", "--hash", auth.Hash(keyA), "--management-endpoint", mgmt.URL+"/prod")
		var closeErr *closeError
		if !errors.As(err, &closeErr) || !strings.Contains(err.Error(), "1 of its 3 open connections could not be closed") || !strings.Contains(err.Error(), "Forbidden") {
			t.Fatalf("revoke = %v, want 1 of 3 not closed, for the 403", err)
		}
		if !strings.Contains(stdout, "closed 1 connection of the key (1 more had ended already)") {
			t.Fatalf("revoke said %q", stdout)
		}
		mu.Lock()
		defer mu.Unlock()
		slices.Sort(deleted)
		if want := []string{"DELETE Conn00000000000=", "DELETE Conn00000000001=", "DELETE Conn00000000002="}; !slices.Equal(deleted, want) {
			t.Fatalf("Management API calls %v, want %v (none for the other key's connection)", deleted, want)
		}
	})
	t.Run("a management endpoint that is not a URL is a usage error", func(t *testing.T) {
		open, _ := setup(t)
		if _, _, err := runNow(t, env, open, "revoke", "--hash", auth.Hash(keyA), "--management-endpoint", "127.0.0.1:8000/local"); !isUsage(err) {
			t.Fatalf("revoke = %v, want a usage error", err)
		}
	})
}
