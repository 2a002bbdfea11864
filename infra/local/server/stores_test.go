package server_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/infra/awsconf"
	"github.com/wsnotify/wsnotify/infra/local/server"
	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/store/dynamo"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// newStore returns a fresh store for one test; nil stands for the embedded
// store server.New creates by default.
type newStore func(t *testing.T) server.Store

// storeSetup is a store local mode can run on. start prepares it once (a
// dynalite) and returns the maker of each scenario's store.
type storeSetup struct {
	name  string
	start func(t *testing.T) newStore
}

var tables atomic.Int64

// storeSetups are the stores the end-to-end scenarios run on.
var storeSetups = []storeSetup{
	{"the embedded store", func(*testing.T) newStore {
		return func(*testing.T) server.Store { return nil }
	}},
	{"the DynamoDB store on dynalite", func(t *testing.T) newStore {
		endpoint := testenv.Dynalite(t)
		return func(t *testing.T) server.Store {
			// A table per scenario, created as --create-table creates it.
			return openDynamo(t, server.DynamoDB{Endpoint: endpoint, Table: fmt.Sprintf("e2e-%d", tables.Add(1)), CreateTable: true})
		}
	}},
}

// openDynamo opens local mode's DynamoDB store, failing the test on error.
func openDynamo(t *testing.T, cfg server.DynamoDB) server.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	st, err := server.OpenDynamoDB(ctx, cfg)
	if err != nil {
		t.Fatalf("OpenDynamoDB: %v", err)
	}
	return st
}

// onStore returns cfg with st as its store (nil keeps the default).
func onStore(cfg server.Config, st server.Store) server.Config {
	cfg.Store = st
	return cfg
}

// scenario is one end-to-end test, run on each store.
type scenario struct {
	name string
	run  func(t *testing.T, store newStore)
}

// endToEnd are the walking skeleton's scenarios: clients connect through the
// seed's path, events reach them through the Invoke API, messages go through
// $default, and closes and shutdowns run $disconnect.
var endToEnd = []scenario{
	{"events reach their owner only, in order and in the seed's shape", eventsReachTheirOwnerOnlyInOrderAndInTheSeedShape},
	{"connect is refused as API Gateway refuses it", connectIsRefusedAsAPIGatewayRefusesIt},
	{"client messages go through the $default route", clientMessagesGoThroughTheDefaultRoute},
	{"a client id is free once its connection has closed", aClientIDIsFreeOnceItsConnectionHasClosed},
	{"the raw API Gateway URL takes the client id from the query", theRawAPIGatewayURLTakesTheClientIDFromTheQuery},
	{"shutdown closes every connection with going away and runs its $disconnect", shutdownClosesEveryConnectionWithGoingAwayAndRunsItsDisconnect},
}

func TestEndToEndOnEveryStore(t *testing.T) {
	t.Parallel()
	for _, setup := range storeSetups {
		t.Run("on "+setup.name, func(t *testing.T) {
			t.Parallel()
			store := setup.start(t)
			for _, sc := range slices.Concat(endToEnd, resumeScenarios) {
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					sc.run(t, store)
				})
			}
		})
	}
}

func TestTheDynamoDBStoreOfLocalMode(t *testing.T) {
	t.Parallel()
	endpoint := testenv.Dynalite(t)
	// Each subtest has its own deadline: one for them all ran out on a
	// machine under load 25, in the fifth.
	table := func() string { return fmt.Sprintf("keys-%d", tables.Add(1)) }

	t.Run("a missing table is an error that says how to create it", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_, err := server.OpenDynamoDB(ctx, server.DynamoDB{Endpoint: endpoint, Table: "nope"})
		if err == nil || !strings.Contains(err.Error(), "--create-table") {
			t.Fatalf("err = %v, want one naming --create-table", err)
		}
	})
	t.Run("an existing table is opened, and created again without harm", func(t *testing.T) {
		name := table()
		openDynamo(t, server.DynamoDB{Endpoint: endpoint, Table: name, CreateTable: true})
		openDynamo(t, server.DynamoDB{Endpoint: endpoint, Table: name})
		openDynamo(t, server.DynamoDB{Endpoint: endpoint, Table: name, CreateTable: true})
	})
	t.Run("keys are written as hashes, and a restart with the same keys works", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		name := table()
		cfg := server.Config{APIKeys: map[string]string{keyA: ownerA}, Logger: testLogger()}
		for range 2 {
			cfg.Store = openDynamo(t, server.DynamoDB{Endpoint: endpoint, Table: name, CreateTable: true})
			if _, err := server.New(cfg); err != nil {
				t.Fatalf("server.New: %v", err)
			}
		}
		keys, err := tableStore(t, endpoint, name).ListKeys(ctx)
		if err != nil || len(keys) != 1 || keys[0].Hash != auth.Hash(keyA) || keys[0].OwnerID != ownerA {
			t.Fatalf("keys in the table: %+v, %v; want the hash of keyA for %s", keys, err, ownerA)
		}
	})
	t.Run("a key the table holds for another owner is refused", func(t *testing.T) {
		name := table()
		st := openDynamo(t, server.DynamoDB{Endpoint: endpoint, Table: name, CreateTable: true})
		if _, err := server.New(server.Config{APIKeys: map[string]string{keyA: ownerA}, Store: st, Logger: testLogger()}); err != nil {
			t.Fatal(err)
		}
		_, err := server.New(server.Config{APIKeys: map[string]string{keyA: ownerB}, Store: st, Logger: testLogger()})
		if !errors.Is(err, dynamo.ErrKeyExists) || !strings.Contains(err.Error(), ownerA) || strings.Contains(err.Error(), keyA) {
			t.Fatalf("err = %v, want ErrKeyExists naming the owner %s and not the key", err, ownerA)
		}
	})
	t.Run("a key the table holds as revoked is refused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		name := table()
		st := openDynamo(t, server.DynamoDB{Endpoint: endpoint, Table: name, CreateTable: true})
		if _, err := server.New(server.Config{APIKeys: map[string]string{keyA: ownerA}, Store: st, Logger: testLogger()}); err != nil {
			t.Fatal(err)
		}
		if err := tableStore(t, endpoint, name).RevokeKey(ctx, auth.Hash(keyA)); err != nil {
			t.Fatal(err)
		}
		_, err := server.New(server.Config{APIKeys: map[string]string{keyA: ownerA}, Store: st, Logger: testLogger()})
		if err == nil || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("err = %v, want one saying the key is revoked", err)
		}
	})
}

// tableStore is the plain DynamoDB store over a table of endpoint, as the
// Lambda functions and the key tool open it.
func tableStore(t *testing.T, endpoint, table string) *dynamo.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := awsconf.Load(ctx, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return dynamo.New(awsconf.DynamoDB(cfg, endpoint), table)
}
