package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/wsnotify/wsnotify/infra/local/server"
)

// Environment variables of the backend flags, one per flag. The first two
// are also the key tool's (infra/keys), so one environment serves both.
const (
	envDynamoDBEndpoint  = "WSNOTIFY_DYNAMODB_ENDPOINT"
	envTable             = "WSNOTIFY_TABLE"
	envCreateTable       = "WSNOTIFY_CREATE_TABLE"
	envFunctionEndpoints = "WSNOTIFY_FUNCTION_ENDPOINTS"
)

// openStoreTimeout bounds the requests that open the DynamoDB store: the
// table check or its creation.
const openStoreTimeout = time.Minute

// backend is what local mode runs the service on: its store (the embedded
// one, or the DynamoDB table the Lambda functions use) and, per function,
// in-process handlers or a Lambda endpoint.
type backend struct {
	dynamoEndpoint string
	table          string // empty: the embedded store
	createTable    bool
	functions      listFlag // NAME=URL

	store server.Store // set by open; nil: the embedded store
}

// define binds the backend flags to b.
func (b *backend) define(fs *flags) {
	fs.stringVar(&b.table, "table", envTable,
		"keep connections and keys in this DynamoDB table, the Lambda functions' store, instead of the embedded one; "+
			"without --dynamodb-endpoint it is a table on AWS, reached with the default AWS configuration")
	fs.stringVar(&b.dynamoEndpoint, "dynamodb-endpoint", envDynamoDBEndpoint,
		"URL of a local DynamoDB holding --table, e.g. dynalite's http://127.0.0.1:4567; local credentials and region us-east-1 unless AWS_* configure others")
	fs.boolVar(&b.createTable, "create-table", envCreateTable,
		"create --table from template.yaml's ConnectionsTable when it is missing; for a local DynamoDB")
	b.functions.check = pair("NAME=URL", func(name, url string) error {
		if err := server.CheckFunctionEndpoint(name, url); err != nil {
			return err
		}
		if _, dup := b.functions.pairs()[name]; dup {
			return fmt.Errorf("%s is given twice", name)
		}
		return nil
	})
	fs.value(&b.functions, "function-endpoint", envFunctionEndpoints,
		"run a function on a Lambda endpoint instead of in-process, NAME=URL, NAME a template logical id ("+strings.Join(server.FunctionNames(), ", ")+
			"), URL its Invoke API (aws-lambda-rie, sam local start-lambda); repeatable")
}

// check refuses combinations that cannot work, after the flags are parsed.
// keysGiven tells whether --api-key (or its variable) named any key.
func (b *backend) check(keysGiven bool) error {
	var errs []error
	if b.table == "" {
		if b.dynamoEndpoint != "" {
			errs = append(errs, errors.New("--dynamodb-endpoint needs --table, the table to use there"))
		}
		if b.createTable {
			errs = append(errs, errors.New("--create-table needs --table, the table to create"))
		}
	}
	if b.table != "" && b.dynamoEndpoint == "" && !keysGiven {
		// With no key given, local mode generates one: it must not land in
		// a table on AWS, where it would outlive the session.
		errs = append(errs, errors.New("--table without --dynamodb-endpoint is a table on AWS: give the keys to use with --api-key; local mode generates none there"))
	}
	return errors.Join(errs...)
}

// open opens the DynamoDB store if a table is configured, and warns about a
// function endpoint that cannot see the embedded store.
func (b *backend) open(ctx context.Context, log *slog.Logger) error {
	if b.table == "" {
		if len(b.functions.values) > 0 {
			log.Warn("functions run on endpoints while local mode keeps the embedded store: they do not share keys or connections; give --table (and --dynamodb-endpoint) naming the functions' table")
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, openStoreTimeout)
	defer cancel()
	st, err := server.OpenDynamoDB(ctx, server.DynamoDB{Endpoint: b.dynamoEndpoint, Table: b.table, CreateTable: b.createTable})
	if err != nil {
		return fmt.Errorf("open the DynamoDB store: %w", err)
	}
	b.store = st
	return nil
}

// apply sets the store and the function endpoints in cfg.
func (b *backend) apply(cfg *server.Config) {
	if b.store != nil {
		cfg.Store = b.store
	}
	cfg.FunctionEndpoints = b.functions.pairs()
}

// printBanner adds the store and the function endpoints to the start-up banner.
func (b *backend) printBanner(w io.Writer) {
	switch {
	case b.table == "":
		fmt.Fprintf(w, "  Store:    embedded, in memory\n")
	case b.dynamoEndpoint == "":
		fmt.Fprintf(w, "  Store:    DynamoDB table %s on AWS\n", b.table)
	default:
		fmt.Fprintf(w, "  Store:    DynamoDB table %s at %s\n", b.table, b.dynamoEndpoint)
	}
	urls := b.functions.pairs()
	names := make([]string, 0, len(urls))
	for name := range urls {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  Function: %s at %s\n", name, urls[name])
	}
}
