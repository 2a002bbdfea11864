package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/infra/template"
	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/store/dynamo"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// startBinaries runs the five Lambda binaries under the Runtime Interface
// Emulator on a fresh dynalite table holding key for owner, pushing through
// local mode's Management API, and local mode in front of them with
// --function-endpoint. It returns local mode's address, the table's store
// and the emulators.
func startBinaries(ctx context.Context, t *testing.T, key, owner, table string) (string, *dynamo.Store, map[string]*testenv.Lambda) {
	t.Helper()
	return startBinariesVia(ctx, t, key, owner, table, func(stageURL string) string { return stageURL })
}

// startBinariesVia is startBinaries with the functions' Management API
// endpoint of their choosing: management gets local mode's stage URL and
// returns the endpoint to give them (a stand-in in front of it).
func startBinariesVia(ctx context.Context, t *testing.T, key, owner, table string, management func(stageURL string) string) (string, *dynamo.Store, map[string]*testenv.Lambda) {
	t.Helper()
	dynamoEndpoint := testenv.Dynalite(t)
	db := testenv.DynamoDB(dynamoEndpoint)
	if err := template.CreateTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	st := dynamo.New(db, table)
	if err := st.PutKey(ctx, auth.Key{Hash: auth.Hash(key), OwnerID: owner, Name: "test", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// The functions push to local mode's stage URL, so its listener is
	// opened before they start, and local mode served on it after them.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	lambdas := testenv.StartFunctions(t, testenv.FunctionEnv(table, dynamoEndpoint, management("http://"+addr+"/local"))...)
	// Local mode on the functions' table, with the key the table already
	// holds: a restart with the same --api-key must work.
	args := []string{"--addr", addr, "--dynamodb-endpoint", dynamoEndpoint, "--table", table, "--api-key", key + "=" + owner}
	for name, l := range lambdas {
		args = append(args, "--function-endpoint", name+"="+l.URL)
	}
	if got := runLocalModeOn(t, l, nil, args...).addr; got != addr {
		t.Fatalf("local mode listens on %s, want %s", got, addr)
	}
	return addr, st, lambdas
}

// TestTheSeedsNodeClientThroughTheLambdaBinaries runs the cloud's code
// path on one machine: the five Lambda binaries under the Runtime Interface
// Emulator on one dynalite table, pushing through local mode's Management
// API, and local mode in front of them with --function-endpoint, serving the
// seed's Node client and forwarding its Invoke API to the binaries.
func TestTheSeedsNodeClientThroughTheLambdaBinaries(t *testing.T) {
	t.Parallel()
	const key, owner, table = "wsn_lambda_test_key", "acct_lambda", "wsnotify-functions"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	addr, st, lambdas := startBinaries(ctx, t, key, owner, table)

	client := startSeedClient(t, addr, key)
	t.Run("the jobevents and s3upload binaries deliver every event type", func(t *testing.T) {
		fireSeedEvents(t, addr, owner)
		client.expectSeedEvents(t)
	})
	t.Run("the default binary answers a ping with pong", func(t *testing.T) {
		client.send(t, `{"action":"ping"}`)
		if ev := client.event(t, "pong"); ev["type"] != "pong" {
			t.Fatalf("got %v, want pong", ev)
		}
	})
	t.Run("the connect binary stored the connection, and the disconnect binary removes it", func(t *testing.T) {
		records := func() int {
			conns, err := st.ListConnections(ctx, owner, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return len(conns)
		}
		if n := records(); n != 1 {
			t.Fatalf("%d connection records of %s, want 1", n, owner)
		}
		client.close(t)
		defer func() {
			if t.Failed() {
				t.Logf("disconnect output:\n%s", lambdas["DisconnectFunction"].Output)
			}
		}()
		testenv.Eventually(t, 20*time.Second, "the record's removal after the close", func() bool { return records() == 0 })
	})
	t.Run("every function ran in its binary", func(t *testing.T) {
		for name, l := range lambdas {
			// The emulator logs each invocation as Lambda does.
			if !strings.Contains(l.Output.String(), "START RequestId:") {
				t.Errorf("%s was never invoked on its endpoint; output:\n%s", name, l.Output)
			}
		}
	})
}
