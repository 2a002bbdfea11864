package main

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/testenv"
)

const rie = "http://127.0.0.1:9001/2015-03-31/functions/function/invocations"

func TestParseBackendConfig(t *testing.T) {
	tests := []struct {
		name          string
		args          []string
		env           map[string]string
		want          backend // the parsed fields (functions as wantFunctions); store is never set by parsing
		wantFunctions map[string]string
		err           string
	}{
		{name: "the default is the embedded store and in-process functions"},
		{name: "the environment selects a local table and function endpoints",
			env: map[string]string{envDynamoDBEndpoint: "http://127.0.0.1:4567", envTable: "t1", envCreateTable: "true",
				envFunctionEndpoints: "ConnectFunction=" + rie + ", JobEventsFunction=http://127.0.0.1:3001/2015-03-31/functions/JobEventsFunction/invocations"},
			want: backend{dynamoEndpoint: "http://127.0.0.1:4567", table: "t1", createTable: true},
			wantFunctions: map[string]string{
				"ConnectFunction": rie, "JobEventsFunction": "http://127.0.0.1:3001/2015-03-31/functions/JobEventsFunction/invocations"}},
		{name: "flags win over the environment, and --function-endpoint replaces its variable",
			args:          []string{"--table", "t2", "--create-table=false", "--function-endpoint", "DefaultFunction=" + rie},
			env:           map[string]string{envDynamoDBEndpoint: "http://127.0.0.1:4567", envTable: "t1", envCreateTable: "1", envFunctionEndpoints: "ConnectFunction=" + rie},
			want:          backend{dynamoEndpoint: "http://127.0.0.1:4567", table: "t2"},
			wantFunctions: map[string]string{"DefaultFunction": rie}},
		{name: "a table on AWS with keys given is accepted", args: []string{"--table", "prod", "--api-key", "k=o"},
			want: backend{table: "prod"}},
		{name: "a table on AWS without keys is refused: no key is generated there", args: []string{"--table", "prod"},
			err: "--api-key"},
		{name: "a DynamoDB endpoint without a table is refused", args: []string{"--dynamodb-endpoint", "http://127.0.0.1:4567"},
			err: "--dynamodb-endpoint needs --table"},
		{name: "--create-table without a table is refused", args: []string{"--create-table"},
			err: "--create-table needs --table"},
		{name: "a malformed create-table variable is refused by name", env: map[string]string{envCreateTable: "sure"},
			err: envCreateTable},
		{name: "an unknown function is refused with the list of functions", args: []string{"--function-endpoint", "Connect=" + rie},
			err: "ConnectFunction, DefaultFunction, DisconnectFunction, FanoutFunction, JobEventsFunction, PublishFunction, S3UploadFunction"},
		{name: "an unknown function in the variable is refused by name", env: map[string]string{envFunctionEndpoints: "Nope=" + rie},
			err: envFunctionEndpoints},
		{name: "an endpoint that is not a URL is refused", args: []string{"--function-endpoint", "ConnectFunction=127.0.0.1:9001"},
			err: "not an http(s) URL"},
		{name: "an endpoint without a name is refused", args: []string{"--function-endpoint", rie},
			err: "NAME=URL"},
		{name: "a function given twice is refused", args: []string{"--function-endpoint", "ConnectFunction=" + rie, "--function-endpoint", "ConnectFunction=" + rie},
			err: "given twice"},
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
			got := cfg.backend
			if got.dynamoEndpoint != tt.want.dynamoEndpoint || got.table != tt.want.table || got.createTable != tt.want.createTable ||
				!maps.Equal(got.functions.pairs(), tt.wantFunctions) {
				t.Fatalf("backend = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLocalModeOnADynamoDBTable(t *testing.T) {
	t.Parallel()
	endpoint := testenv.Dynalite(t)
	table := []string{"--dynamodb-endpoint", endpoint, "--table", "wsnotify-keys"}
	// runOnce runs local mode with args and stops it as soon as it serves.
	runOnce := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		banner, bannerW := io.Pipe()
		go func() {
			// The first banner line means it is serving: stop it.
			_, _ = banner.Read(make([]byte, 1))
			cancel()
			_, _ = io.Copy(io.Discard, banner)
		}()
		defer bannerW.Close()
		return run(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), envOf(nil), bannerW, slog.New(slog.DiscardHandler))
	}

	t.Run("a missing table is refused with a hint", func(t *testing.T) {
		if err := runOnce(append(table, "--api-key", "wsn_k1=acct_1")...); err == nil || !strings.Contains(err.Error(), "--create-table") {
			t.Fatalf("err = %v, want one naming --create-table", err)
		}
	})
	t.Run("--create-table creates it and stores the keys", func(t *testing.T) {
		if err := runOnce(append(table, "--create-table", "--api-key", "wsn_k1=acct_1")...); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a restart with the same key and owner works", func(t *testing.T) {
		if err := runOnce(append(table, "--api-key", "wsn_k1=acct_1")...); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a restart that gives the key to another owner is refused, without the key", func(t *testing.T) {
		err := runOnce(append(table, "--api-key", "wsn_k1=acct_2")...)
		if err == nil || !strings.Contains(err.Error(), "acct_1") || strings.Contains(err.Error(), "wsn_k1") {
			t.Fatalf("err = %v, want one naming the owner acct_1 and not the key", err)
		}
	})
}
