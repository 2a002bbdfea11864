// Command keys administers the service's API keys in its DynamoDB table.
//
//	go run ./infra/keys create --owner acct_42 [--name "CI"]   prints a new key, once
//	go run ./infra/keys list                                   hash prefixes, owners, names; never keys
//	go run ./infra/keys revoke --hash 1a2b3c4d5e6f             by a unique hash prefix (12+ hex digits)
//	go run ./infra/keys revoke --key-stdin < key.txt           by the key itself, read from stdin
//	go run ./infra/keys revoke --hash 1a2b3c4d5e6f --management-endpoint URL
//	                                                           and close the key's open connections
//	go run ./infra/keys mint --owner acct_42 --ttl 10m         prints a signed token, for testing
//
// Every command takes --table (default $WSNOTIFY_TABLE, required) and
// --endpoint (default $WSNOTIFY_DYNAMODB_ENDPOINT), a DynamoDB endpoint such
// as a local dynalite; without it the normal AWS configuration applies
// (environment, shared config files, instance role).
//
// A key is printed once, on create, and stored only as its SHA-256 hash: a
// lost key cannot be recovered, only revoked and replaced.
//
// A revoked key is refused on every later connect. Its connections already
// open are closed with the Management API's DeleteConnection, one by one,
// when revoke is given --management-endpoint (default
// $WSNOTIFY_MANAGEMENT_ENDPOINT): the stack's ManagementApiEndpoint output in
// the cloud, http://127.0.0.1:8000/local for local mode. The caller needs
// execute-api:ManageConnections on DELETE @connections/* there. Without it
// they stay open until they end (2 hours at most), and revoke says how many.
// Revoking a revoked key again closes what is still open of it: a connect
// that authenticated just before the revocation may write its record after
// revoke has listed the key's connections.
//
// mint needs no table: it signs a token with the first secret of
// --token-secret or $WSNOTIFY_TOKEN_SECRETS, the variable local mode reads
// (prefer it: a flag's value shows in the process list and shell history).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"

	"github.com/wsnotify/wsnotify/infra/awsconf"
	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/store"
	"github.com/wsnotify/wsnotify/shared/store/dynamo"
)

// Environment variables supplying the flags' defaults.
const (
	envTable        = "WSNOTIFY_TABLE"
	envEndpoint     = "WSNOTIFY_DYNAMODB_ENDPOINT"
	envTokenSecrets = "WSNOTIFY_TOKEN_SECRETS"
	envManagement   = "WSNOTIFY_MANAGEMENT_ENDPOINT"
	// The aud and iss a minted token carries, as local mode requires them
	// (--token-audience, --token-issuer): one environment mints what it accepts.
	envTokenAudience = "WSNOTIFY_TOKEN_AUDIENCE"
	envTokenIssuer   = "WSNOTIFY_TOKEN_ISSUER"
)

// minPrefix is the shortest hash prefix revoke accepts: auth.Prefix's length,
// the form list shows.
const minPrefix = 12

const usage = `usage: keys COMMAND [flags]

commands:
  create --owner ID [--name NAME]   create a key for an owner; the key is printed once
  list                              list keys: hash prefix, owner, name, created, revoked
  revoke --hash PREFIX              revoke the key whose hash starts with PREFIX (12+ hex digits)
  revoke --key-stdin                revoke the key read from standard input
         [--management-endpoint URL]
                                    and close the key's open connections through the
                                    Management API at URL (default $WSNOTIFY_MANAGEMENT_ENDPOINT):
                                    the stack's ManagementApiEndpoint output, or local mode's
                                    http://127.0.0.1:8000/local
  mint --owner ID [--ttl 10m] [--token-secret S] [--audience AUD] [--issuer ISS]
                                    print a signed token for an owner, signed with the first
                                    secret of --token-secret or $WSNOTIFY_TOKEN_SECRETS, with the
                                    aud and iss the service requires (default
                                    $WSNOTIFY_TOKEN_AUDIENCE, $WSNOTIFY_TOKEN_ISSUER); no table

flags of every command but mint:
  --table NAME      DynamoDB table (default $WSNOTIFY_TABLE)
  --endpoint URL    DynamoDB endpoint, e.g. a local dynalite (default $WSNOTIFY_DYNAMODB_ENDPOINT)
`

// usageError is a command line the tool cannot run; main exits 2 on it.
type usageError string

func (e usageError) Error() string { return string(e) }

func usagef(format string, args ...any) error { return usageError(fmt.Sprintf(format, args...)) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c := cli{
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
		getenv: os.Getenv,
		now:    time.Now,
	}
	if err := c.run(ctx, os.Args[1:]); err != nil {
		var usageErr usageError
		if errors.As(err, &usageErr) {
			fmt.Fprintf(os.Stderr, "keys: %v\n\n%s", err, usage)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "keys: %v\n", err)
		os.Exit(1)
	}
}

// keyStore is the part of the store the tool uses.
type keyStore interface {
	PutKey(ctx context.Context, k auth.Key) error
	RevokeKey(ctx context.Context, hash string) error
	ListKeys(ctx context.Context) ([]auth.Key, error)
	// ListConnections lists an owner's live connections, each with the
	// key it connected with, for revoke.
	ListConnections(ctx context.Context, ownerID string, now time.Time) ([]store.Connection, error)
}

// cli is the command with its environment, so tests can run it in-process.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
	// openStore, when set, replaces the DynamoDB store (tests).
	openStore func(ctx context.Context, table, endpoint string) (keyStore, error)
}

func (c cli) run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("no command")
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	table := fs.String("table", c.getenv(envTable), "")
	endpoint := fs.String("endpoint", c.getenv(envEndpoint), "")
	var exec func(context.Context, keyStore) error
	switch cmd {
	case "create":
		owner := fs.String("owner", "", "")
		name := fs.String("name", "", "")
		exec = func(ctx context.Context, s keyStore) error { return c.create(ctx, s, *owner, *name) }
		if err := c.parse(fs, args); err != nil {
			return err
		}
		if !event.ValidOwnerID(*owner) {
			return usagef("create needs --owner, 1-%d characters of A-Z a-z 0-9 . _ : @ -", event.MaxOwnerIDLength)
		}
	case "list":
		exec = c.list
		if err := c.parse(fs, args); err != nil {
			return err
		}
	case "revoke":
		hash := fs.String("hash", "", "")
		keyStdin := fs.Bool("key-stdin", false, "")
		management := fs.String("management-endpoint", c.getenv(envManagement), "")
		if err := c.parse(fs, args); err != nil {
			return err
		}
		if *management != "" {
			if u, err := url.Parse(*management); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
				return usagef("--management-endpoint %q: want an http(s) URL with a host, the stage's URL", *management)
			}
		}
		if (*hash == "") == !*keyStdin {
			return usagef("revoke needs one of --hash PREFIX and --key-stdin")
		}
		if *hash != "" && !hashPrefix.MatchString(*hash) {
			return usagef("--hash must be %d to 64 lower-case hex digits (as list shows), got %q", minPrefix, *hash)
		}
		if *keyStdin {
			key, err := readKey(c.stdin)
			if err != nil {
				return err
			}
			*hash = auth.Hash(key)
		}
		exec = func(ctx context.Context, s keyStore) error { return c.revoke(ctx, s, *hash, *management, *endpoint) }
	case "mint":
		owner := fs.String("owner", "", "")
		ttl := fs.Duration("ttl", 10*time.Minute, "")
		var secrets stringList
		fs.Var(&secrets, "token-secret", "")
		audience := fs.String("audience", c.getenv(envTokenAudience), "")
		issuer := fs.String("issuer", c.getenv(envTokenIssuer), "")
		if err := c.parse(fs, args); err != nil {
			return err
		}
		return c.mint(*owner, *ttl, secrets, auth.TokenScope{Audience: *audience, Issuer: *issuer})
	case "help", "-h", "--help":
		fmt.Fprint(c.stdout, usage)
		return nil
	default:
		return usagef("unknown command %q", cmd)
	}
	if *table == "" {
		return usagef("no table: set --table or %s", envTable)
	}
	open := c.openStore
	if open == nil {
		open = openDynamo
	}
	s, err := open(ctx, *table, *endpoint)
	if err != nil {
		return err
	}
	if err := exec(ctx, s); err != nil {
		var closeErr *closeError
		if errors.As(err, &closeErr) {
			return err // the key is revoked; the table is not what failed
		}
		return fmt.Errorf("table %s: %w", *table, err)
	}
	return nil
}

var hashPrefix = regexp.MustCompile(fmt.Sprintf(`^[0-9a-f]{%d,64}$`, minPrefix))

func (c cli) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usagef("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// openDynamo returns the DynamoDB store. With an endpoint (dynalite), any
// credentials do and the region may be unset: awsconf fills in for those the
// environment does not configure.
func openDynamo(ctx context.Context, table, endpoint string) (keyStore, error) {
	cfg, err := awsconf.Load(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	return dynamo.New(awsconf.DynamoDB(cfg, endpoint), table), nil
}

func (c cli) create(ctx context.Context, s keyStore, owner, name string) error {
	key, err := auth.NewKey()
	if err != nil {
		return err
	}
	k := auth.NewKeyRecord(key, owner, name, c.now())
	if err := s.PutKey(ctx, k); err != nil {
		return err
	}
	// The key alone goes to stdout, so that `keys create … > file` captures
	// exactly it; the explanation goes to stderr.
	fmt.Fprintln(c.stdout, key)
	fmt.Fprintf(c.stderr, "created key %s for owner %s. It is shown this once and stored only as its hash: keep it now.\n",
		auth.Prefix(k.Hash), owner)
	return nil
}

func (c cli) list(ctx context.Context, s keyStore) error {
	keys, err := s.ListKeys(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "HASH\tOWNER\tNAME\tCREATED\tREVOKED")
	for _, k := range keys {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%t\n", auth.Prefix(k.Hash), k.OwnerID, orDash(k.Name), k.CreatedAt.UTC().Format(time.RFC3339), k.Revoked)
	}
	return w.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// revoke revokes the one key whose hash starts with prefix (a full hash is
// a prefix of itself), then closes the key's open connections through the
// Management API at management, if given; dynamoEndpoint, if set, is a
// local DynamoDB, and its local credentials sign the Management API calls.
func (c cli) revoke(ctx context.Context, s keyStore, prefix, management, dynamoEndpoint string) error {
	keys, err := s.ListKeys(ctx)
	if err != nil {
		return err
	}
	var match []auth.Key
	for _, k := range keys {
		if strings.HasPrefix(k.Hash, prefix) {
			match = append(match, k)
		}
	}
	switch {
	case len(match) == 0:
		return fmt.Errorf("no key has a hash starting with %s", auth.Prefix(prefix))
	case len(match) > 1:
		return fmt.Errorf("%d keys have a hash starting with %s: give more digits", len(match), prefix)
	}
	k := match[0]
	if err := s.RevokeKey(ctx, k.Hash); err != nil {
		return err
	}
	note := ""
	if k.Revoked {
		note = " (it already was)"
	}
	fmt.Fprintf(c.stdout, "revoked key %s of owner %s%s\n", auth.Prefix(k.Hash), k.OwnerID, note)

	// Listed after the revocation, so that a connect refused from now on
	// adds nothing to the list.
	conns, err := s.ListConnections(ctx, k.OwnerID, c.now())
	if err != nil {
		return fmt.Errorf("list the connections of owner %s: %w", k.OwnerID, err)
	}
	var ids []string
	for _, conn := range conns {
		if conn.KeyID == auth.Prefix(k.Hash) {
			ids = append(ids, conn.ConnectionID)
		}
	}
	if management == "" {
		if len(ids) > 0 {
			fmt.Fprintf(c.stderr, "%s of the key stay open until they end (2 hours at most): give --management-endpoint to close them\n", plural(len(ids), "connection"))
		}
		return nil
	}
	closer, err := newManagementClient(ctx, management, dynamoEndpoint)
	if err != nil {
		return err
	}
	closed, gone, err := closeConnections(ctx, closer, ids)
	fmt.Fprintf(c.stdout, "closed %s of the key", plural(closed, "connection"))
	if gone > 0 {
		fmt.Fprintf(c.stdout, " (%d more had ended already)", gone)
	}
	fmt.Fprintln(c.stdout)
	return err
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// connectionCloser is the part of the Management API client revoke uses.
type connectionCloser interface {
	DeleteConnection(ctx context.Context, in *apigatewaymanagementapi.DeleteConnectionInput, optFns ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.DeleteConnectionOutput, error)
}

// newManagementClient returns a Management API client for the stage URL
// endpoint, with the configuration the DynamoDB store got (awsconf.Load).
// Its standard retryer retries throttling (429) and 5xx answers.
func newManagementClient(ctx context.Context, endpoint, dynamoEndpoint string) (connectionCloser, error) {
	cfg, err := awsconf.Load(ctx, dynamoEndpoint)
	if err != nil {
		return nil, err
	}
	return apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	}), nil
}

// closeWorkers is how many DeleteConnection calls revoke has in flight.
const closeWorkers = 8

// closeError is a revocation whose connections could not all be closed.
type closeError struct {
	failed, of int
	first      error
}

func (e *closeError) Error() string {
	return fmt.Sprintf("the key is revoked, but %d of its %d open connections could not be closed (run revoke again to retry): %v", e.failed, e.of, e.first)
}

func (e *closeError) Unwrap() error { return e.first }

// closeConnections deletes each connection through the Management API.
// closed counts those it closed, gone those that had ended already (410);
// any other failure makes a *closeError.
func closeConnections(ctx context.Context, api connectionCloser, ids []string) (closed, gone int, err error) {
	var (
		mu     sync.Mutex
		failed int
		first  error
		next   = make(chan string)
		wg     sync.WaitGroup
	)
	for range min(closeWorkers, len(ids)) {
		wg.Go(func() {
			for id := range next {
				_, err := api.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)})
				var goneErr *types.GoneException
				mu.Lock()
				switch {
				case errors.As(err, &goneErr):
					gone++
				case err != nil:
					failed++
					if first == nil {
						first = fmt.Errorf("close connection %s: %w", id, err)
					}
				default:
					closed++
				}
				mu.Unlock()
			}
		})
	}
	for _, id := range ids {
		next <- id
	}
	close(next)
	wg.Wait()
	if failed > 0 {
		return closed, gone, &closeError{failed: failed, of: len(ids), first: first}
	}
	return closed, gone, nil
}

// readKey reads a key from the first line of r.
func readKey(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read key from stdin: %w", err)
	}
	key := strings.TrimSpace(line)
	if key == "" {
		return "", errors.New("read key from stdin: no key given")
	}
	return key, nil
}

// mint prints a signed token for owner, valid for ttl. It refuses what the
// service would refuse: a secret under 32 bytes, a bad owner id, a ttl
// past the default maximum lifetime.
func (c cli) mint(owner string, ttl time.Duration, flagSecrets []string, scope auth.TokenScope) error {
	if !event.ValidOwnerID(owner) {
		return usagef("mint needs --owner, 1-%d characters of A-Z a-z 0-9 . _ : @ -", event.MaxOwnerIDLength)
	}
	if ttl <= 0 || ttl > auth.DefaultTokenMaxTTL {
		return usagef("--ttl %v: must be positive and at most %v, the service's default limit", ttl, auth.DefaultTokenMaxTTL)
	}
	secrets := auth.SplitSecrets(c.getenv(envTokenSecrets))
	if len(flagSecrets) > 0 {
		secrets = nil
		for _, s := range flagSecrets {
			secrets = append(secrets, []byte(strings.TrimSpace(s)))
		}
	}
	if len(secrets) == 0 {
		return usagef("mint needs a secret: set %s (or --token-secret)", envTokenSecrets)
	}
	if err := auth.CheckSecrets(secrets); err != nil {
		return err
	}
	now := c.now()
	token, err := auth.MintToken(secrets[0], owner, ttl, now, scope)
	if err != nil {
		return err
	}
	// The token alone on stdout, for $(keys mint …); the rest on stderr.
	fmt.Fprintln(c.stdout, token)
	fmt.Fprintf(c.stderr, "signed token for owner %s, expires %s (in %v)\n", owner, now.Add(ttl).UTC().Format(time.RFC3339), ttl)
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return fmt.Sprintf("%d value(s)", len(*l)) }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
