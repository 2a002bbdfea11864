package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
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
	functions      functionFlag

	store server.Store // set by open; nil: the embedded store
}

// register defines the backend flags on fs, each defaulting to its
// environment variable. A malformed environment value is an error naming
// the variable.
func (b *backend) register(fs *flag.FlagSet, lookupEnv func(string) (string, bool)) error {
	env := func(name string) string {
		v, _ := lookupEnv(name)
		return strings.TrimSpace(v)
	}
	b.dynamoEndpoint, b.table = env(envDynamoDBEndpoint), env(envTable)
	if v := env(envCreateTable); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%s: %q is not true or false", envCreateTable, v)
		}
		b.createTable = on
	}
	if v := env(envFunctionEndpoints); v != "" {
		for _, pair := range strings.Split(v, ",") {
			if err := b.functions.add(strings.TrimSpace(pair)); err != nil {
				return fmt.Errorf("%s: %w", envFunctionEndpoints, err)
			}
		}
	}
	fs.StringVar(&b.table, "table", b.table,
		"keep connections and keys in this DynamoDB table, the Lambda functions' store, instead of the embedded one; "+
			"without --dynamodb-endpoint it is a table on AWS, reached with the default AWS configuration (env "+envTable+")")
	fs.StringVar(&b.dynamoEndpoint, "dynamodb-endpoint", b.dynamoEndpoint,
		"URL of a local DynamoDB holding --table, e.g. dynalite's http://127.0.0.1:4567; local credentials and region us-east-1 unless AWS_* configure others (env "+envDynamoDBEndpoint+")")
	fs.BoolVar(&b.createTable, "create-table", b.createTable,
		"create --table from template.yaml's ConnectionsTable when it is missing; for a local DynamoDB (env "+envCreateTable+")")
	fs.Var(&b.functions, "function-endpoint",
		"run a function on a Lambda endpoint instead of in-process, NAME=URL, NAME a template logical id ("+strings.Join(server.FunctionNames(), ", ")+
			"), URL its Invoke API (aws-lambda-rie, sam local start-lambda); repeatable; replaces "+envFunctionEndpoints+` ("N1=U1,N2=U2")`)
	return nil
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
		if len(b.functions.urls) > 0 {
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
func (b *backend) apply(cfg server.Config) server.Config {
	if b.store != nil {
		cfg.Store = b.store
	}
	cfg.FunctionEndpoints = b.functions.urls
	return cfg
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
	names := make([]string, 0, len(b.functions.urls))
	for name := range b.functions.urls {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  Function: %s at %s\n", name, b.functions.urls[name])
	}
}

// functionFlag collects --function-endpoint NAME=URL. As with --api-key, the
// first flag replaces the endpoints from the environment.
type functionFlag struct {
	urls    map[string]string // logical id → Invoke API URL
	fromCLI bool
}

func (f *functionFlag) String() string {
	if f == nil || len(f.urls) == 0 {
		return ""
	}
	pairs := make([]string, 0, len(f.urls))
	for name, u := range f.urls {
		pairs = append(pairs, name+"="+u)
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

func (f *functionFlag) Set(v string) error {
	if !f.fromCLI {
		f.urls, f.fromCLI = nil, true
	}
	return f.add(v)
}

func (f *functionFlag) add(pair string) error {
	name, u, ok := strings.Cut(pair, "=")
	name, u = strings.TrimSpace(name), strings.TrimSpace(u)
	if !ok || name == "" || u == "" {
		return fmt.Errorf("%q: want NAME=URL", pair)
	}
	if err := server.CheckFunctionEndpoint(name, u); err != nil {
		return err
	}
	if _, dup := f.urls[name]; dup {
		return fmt.Errorf("%s is given twice", name)
	}
	if f.urls == nil {
		f.urls = map[string]string{}
	}
	f.urls[name] = u
	return nil
}
