package main

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

const (
	shutdownKeyA, shutdownOwnerA = "wsn_shutdown_key_a", "acct_shut_a"
	shutdownKeyB, shutdownOwnerB = "wsn_shutdown_key_b", "acct_shut_b"
)

// shutdownClients are the clients each shutdown test connects: two owners,
// one of them with two clients.
var shutdownClients = []struct{ clientID, key, owner string }{
	{"a1", shutdownKeyA, shutdownOwnerA},
	{"a2", shutdownKeyA, shutdownOwnerA},
	{"b1", shutdownKeyB, shutdownOwnerB},
}

// closeStatuses connects every shutdown client to addr and returns a channel
// on which each reports how its connection ended.
func closeStatuses(t *testing.T, addr string) <-chan error {
	t.Helper()
	ended := make(chan error, len(shutdownClients))
	ctx, cancel := context.WithTimeout(context.Background(), processWait)
	t.Cleanup(cancel)
	for _, cl := range shutdownClients {
		c := dialLocal(t, addr, cl.clientID, cl.key)
		go func() {
			ce, err := closeCode(ctx, c)
			switch {
			case err != nil:
				ended <- fmt.Errorf("%s: ended without a close frame: %w", cl.clientID, err)
			case ce.Code != websocket.StatusGoingAway || ce.Reason != "server shutting down":
				ended <- fmt.Errorf("%s: closed with %v, want 1001 server shutting down", cl.clientID, ce)
			default:
				ended <- nil
			}
		}()
	}
	return ended
}

func TestASignalClosesEveryConnectionWith1001RunsEachDisconnectAndExitsZero(t *testing.T) {
	t.Parallel()
	bin := testenv.LocalMode(t)
	for _, sig := range []os.Signal{syscall.SIGTERM, os.Interrupt} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			p := startLocalModeProcess(t, bin,
				[]string{envAPIKeys + "=" + shutdownKeyA + "=" + shutdownOwnerA + "," + shutdownKeyB + "=" + shutdownOwnerB})
			ended := closeStatuses(t, p.addr)
			ids := map[string]string{}
			for _, cl := range shutdownClients {
				waitLogged(t, p.stderr, "msg=connected", "clientId="+cl.clientID+" ")
				ids[cl.clientID] = loggedConnectionID(p.stderr.String(), cl.owner, cl.clientID)
			}

			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			for range shutdownClients {
				if err := <-ended; err != nil {
					t.Error(err)
				}
			}
			if code := p.waitExit(t); code != 0 {
				t.Fatalf("exit code %d, want 0; log:\n%s", code, p.stderr)
			}
			for clientID, id := range ids {
				// The core logs "disconnected" once it has deleted the record.
				waitLogged(t, p.stderr, "msg=disconnected", "connectionId="+fmt.Sprintf("%q", id))
				waitLogged(t, p.stderr, "msg=\"websocket closed\"", "clientId="+clientID+" ", "code=1001")
			}
			ctx, cancel := context.WithTimeout(context.Background(), processWait)
			defer cancel()
			if c, _, err := asyncapi.Dial(ctx, "ws://"+p.addr+"/api/v1/ws/late?token="+shutdownKeyA, nil); err == nil {
				c.CloseNow()
				t.Fatal("a connection was accepted after the shutdown")
			}
		})
	}
}

func TestRunShutsDownGracefullyWhenItsContextEndsAndLeavesTheStoreEmpty(t *testing.T) {
	t.Parallel()
	r := runLocalMode(t, nil,
		"--api-key", shutdownKeyA+"="+shutdownOwnerA, "--api-key", shutdownKeyB+"="+shutdownOwnerB)
	ended := closeStatuses(t, r.addr)
	// Each handshake has been answered: the hub holds every client.
	if n := r.srv.Hub().Len(); n != len(shutdownClients) {
		t.Fatalf("the hub holds %d connections, want %d", n, len(shutdownClients))
	}

	if err := r.stop(); err != nil {
		t.Fatalf("run returned %v, want nil (exit code 0)", err)
	}
	for range shutdownClients {
		if err := <-ended; err != nil {
			t.Error(err)
		}
	}
	if n := r.srv.Hub().Len(); n != 0 {
		t.Errorf("%d connections left in the hub", n)
	}
	for _, owner := range []string{shutdownOwnerA, shutdownOwnerB} {
		conns, err := r.srv.Store().ListConnections(context.Background(), owner, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(conns) != 0 {
			t.Errorf("records of %s left in the store: %+v", owner, conns)
		}
	}
}
