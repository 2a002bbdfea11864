package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/infra/template"
	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/store/dynamo"
	"github.com/wsnotify/wsnotify/shared/store/memory"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

var created = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// invoke runs the command with env as its environment and returns what it
// printed.
func invoke(t *testing.T, env map[string]string, stdin string, open func(context.Context, string, string) (keyStore, error), args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut strings.Builder
	c := cli{
		stdin:     strings.NewReader(stdin),
		stdout:    &out,
		stderr:    &errOut,
		getenv:    func(k string) string { return env[k] },
		now:       func() time.Time { return created },
		openStore: open,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = c.run(ctx, args)
	return out.String(), errOut.String(), err
}

func TestKeysOnDynalite(t *testing.T) {
	endpoint := testenv.Dynalite(t)
	client := testenv.DynamoDB(endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := template.CreateTable(ctx, client, "conns"); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{envTable: "conns", envEndpoint: endpoint}
	authn := auth.NewAuthenticator(dynamo.New(client, "conns"))

	stdout, stderr, err := invoke(t, env, "", nil, "create", "--owner", "acct_42", "--name", "CI runner")
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	key := strings.TrimSuffix(stdout, "\n")
	if !strings.HasPrefix(key, "wsn_") || strings.Contains(key, "\n") {
		t.Fatalf("create printed %q, want the key alone", stdout)
	}
	hash := auth.Hash(key)
	if !strings.Contains(stderr, auth.Prefix(hash)) || strings.Contains(stderr, key) {
		t.Fatalf("create explained %q, want the hash prefix and not the key", stderr)
	}

	t.Run("the created key authenticates its owner", func(t *testing.T) {
		owner, err := authn.Authenticate(ctx, key)
		if err != nil || owner != "acct_42" {
			t.Fatalf("Authenticate = %q, %v; want acct_42", owner, err)
		}
	})
	t.Run("list shows the hash prefix, owner and name, never the key or its hash", func(t *testing.T) {
		stdout, _, err := invoke(t, env, "", nil, "list")
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		for _, want := range []string{"HASH", auth.Prefix(hash), "acct_42", "CI runner", "2030-01-02T03:04:05Z", "false"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("list output lacks %q:\n%s", want, stdout)
			}
		}
		if strings.Contains(stdout, key) || strings.Contains(stdout, hash) || strings.Contains(stdout, key[4:16]) {
			t.Errorf("list output shows the key or its whole hash:\n%s", stdout)
		}
	})
	t.Run("a revoked key is unauthorized", func(t *testing.T) {
		stdout, _, err := invoke(t, env, "", nil, "revoke", "--hash", auth.Prefix(hash))
		if err != nil {
			t.Fatalf("revoke: %v", err)
		}
		if !strings.Contains(stdout, "revoked key "+auth.Prefix(hash)+" of owner acct_42") {
			t.Errorf("revoke said %q", stdout)
		}
		if _, err := authn.Authenticate(ctx, key); !errors.Is(err, auth.ErrUnauthorized) {
			t.Fatalf("Authenticate after revoke = %v, want auth.ErrUnauthorized", err)
		}
		list, _, _ := invoke(t, env, "", nil, "list")
		if !strings.Contains(list, "true") {
			t.Errorf("list does not show the key revoked:\n%s", list)
		}
	})
	t.Run("a key read from stdin is revoked", func(t *testing.T) {
		other, _, err := invoke(t, env, "", nil, "create", "--owner", "acct_7")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := invoke(t, env, other, nil, "revoke", "--key-stdin"); err != nil {
			t.Fatalf("revoke --key-stdin: %v", err)
		}
		if _, err := authn.Authenticate(ctx, strings.TrimSpace(other)); !errors.Is(err, auth.ErrUnauthorized) {
			t.Fatalf("Authenticate after revoke = %v, want auth.ErrUnauthorized", err)
		}
	})
	t.Run("the table can be given as a flag", func(t *testing.T) {
		if _, _, err := invoke(t, map[string]string{}, "", nil, "list", "--table", "conns", "--endpoint", endpoint); err != nil {
			t.Fatalf("list with flags: %v", err)
		}
	})
	t.Run("a missing table is reported", func(t *testing.T) {
		_, _, err := invoke(t, env, "", nil, "list", "--table", "nope")
		if err == nil || !strings.Contains(err.Error(), "nope") {
			t.Fatalf("list of a missing table = %v", err)
		}
	})
}

func TestKeysCommandLine(t *testing.T) {
	env := map[string]string{envTable: "conns"}
	mem := memory.New()
	open := func(context.Context, string, string) (keyStore, error) { return mem, nil }
	for _, k := range []auth.Key{
		{Hash: "aaaaaaaaaaaa1111" + strings.Repeat("0", 48), OwnerID: "acct_1", CreatedAt: created},
		{Hash: "aaaaaaaaaaaa2222" + strings.Repeat("0", 48), OwnerID: "acct_2", CreatedAt: created},
	} {
		if err := mem.PutKey(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		env   map[string]string
		args  []string
		usage bool   // a command-line error (exit 2)
		want  string // in the error
	}{
		{"no command", env, nil, true, "no command"},
		{"an unknown command", env, []string{"rotate"}, true, `unknown command "rotate"`},
		{"no table", map[string]string{}, []string{"list"}, true, envTable},
		{"create without an owner", env, []string{"create"}, true, "--owner"},
		{"create with an owner id that cannot be one", env, []string{"create", "--owner", "a/b"}, true, "--owner"},
		{"an unknown flag", env, []string{"list", "--all"}, true, "-all"},
		{"a stray argument", env, []string{"list", "now"}, true, `unexpected argument "now"`},
		{"revoke without a key", env, []string{"revoke"}, true, "--hash"},
		{"revoke with both --hash and --key-stdin", env, []string{"revoke", "--hash", "aaaaaaaaaaaa", "--key-stdin"}, true, "one of"},
		{"revoke by a prefix under 12 digits", env, []string{"revoke", "--hash", "aaaaaaaaaaa"}, true, "12 to 64"},
		{"revoke by a prefix that is not hex", env, []string{"revoke", "--hash", "wsn_aaaaaaaaaaaaaa"}, true, "12 to 64"},
		{"revoke by an ambiguous prefix", env, []string{"revoke", "--hash", "aaaaaaaaaaaa"}, false, "2 keys have a hash starting with aaaaaaaaaaaa"},
		{"revoke by an unknown prefix", env, []string{"revoke", "--hash", "bbbbbbbbbbbb"}, false, "no key has a hash starting with bbbbbbbbbbbb"},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			_, _, err := invoke(t, tc.env, "", open, tc.args...)
			if err == nil || isUsage(err) != tc.usage || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run(%q) = %v; want an error with %q (usage error: %t)", tc.args, err, tc.want, tc.usage)
			}
		})
	}
	t.Run("a unique longer prefix revokes its key only", func(t *testing.T) {
		if _, _, err := invoke(t, env, "", open, "revoke", "--hash", "aaaaaaaaaaaa2"); err != nil {
			t.Fatal(err)
		}
		keys, _ := mem.ListKeys(context.Background())
		if keys[0].Revoked || !keys[1].Revoked {
			t.Fatalf("keys after revoke = %+v", keys)
		}
	})
	t.Run("an empty stdin revokes nothing", func(t *testing.T) {
		if _, _, err := invoke(t, env, "\n", open, "revoke", "--key-stdin"); err == nil || !strings.Contains(err.Error(), "no key") {
			t.Fatalf("revoke --key-stdin with no key = %v", err)
		}
	})
}

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}
