package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/wsnotify/wsnotify/infra/local/server"
	"github.com/wsnotify/wsnotify/shared/auth"
)

// Environment variables of the signed-token flags. infra/keys mint reads
// the first one too, so one environment mints what local mode accepts.
const (
	envTokenSecrets = "WSNOTIFY_TOKEN_SECRETS"
	envTokenMaxTTL  = "WSNOTIFY_TOKEN_MAX_TTL"
)

// tokens are the flags of signed tokens: the secrets that verify them (the
// first also signs, for infra/keys mint) and how far ahead their exp may lie.
type tokens struct {
	secrets secretFlag
	maxTTL  time.Duration
}

// register defines the token flags on fs, each defaulting to its
// environment variable.
func (tk *tokens) register(fs *flag.FlagSet, lookupEnv func(string) (string, bool)) error {
	tk.maxTTL = auth.DefaultTokenMaxTTL
	if v, ok := lookupEnv(envTokenSecrets); ok {
		tk.secrets.values = auth.SplitSecrets(v)
	}
	if v, ok := lookupEnv(envTokenMaxTTL); ok && strings.TrimSpace(v) != "" {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%s: %q is not a duration such as 24h or 30m", envTokenMaxTTL, v)
		}
		tk.maxTTL = d
	}
	fs.Var(&tk.secrets, "token-secret",
		"a `secret` of signed tokens (HS256 JWTs in ?token=, besides API keys), at least 32 bytes; repeatable for a rotation, the first signs (infra/keys mint); replaces "+
			envTokenSecrets+` ("s1,s2"). None: signed tokens are refused`)
	fs.DurationVar(&tk.maxTTL, "token-max-ttl", tk.maxTTL,
		"refuse signed tokens whose exp lies further ahead (env "+envTokenMaxTTL+")")
	return nil
}

// check refuses short secrets at start-up, naming them by position only.
func (tk *tokens) check() error {
	var errs []error
	if len(tk.secrets.values) > 0 {
		if err := auth.CheckSecrets(tk.secrets.values); err != nil {
			errs = append(errs, fmt.Errorf("--token-secret / %s: %w", envTokenSecrets, err))
		}
	}
	if tk.maxTTL <= 0 {
		errs = append(errs, fmt.Errorf("--token-max-ttl %v: must be positive", tk.maxTTL))
	}
	return errors.Join(errs...)
}

// apply turns signed tokens on in cfg when secrets are given.
func (tk tokens) apply(cfg server.Config) server.Config {
	if len(tk.secrets.values) > 0 {
		cfg.Tokens = auth.NewTokenVerifier(auth.StaticSecrets(tk.secrets.values), auth.TokenConfig{MaxTTL: tk.maxTTL})
	}
	return cfg
}

// printBanner says whether signed tokens are on, and how to mint one.
func (tk tokens) printBanner(w io.Writer) {
	if len(tk.secrets.values) == 0 {
		return
	}
	fmt.Fprintf(w, "  Signed tokens: on, %d secret(s), exp at most %s ahead; mint one with\n", len(tk.secrets.values), tk.maxTTL)
	fmt.Fprintf(w, "    %s=<the first secret> go run ./infra/keys mint --owner <owner> --ttl 10m\n", envTokenSecrets)
}

// warnEndpoint tells that a $connect running on a Lambda endpoint checks
// tokens against its own secrets (TOKEN_SECRET_ID), not these.
func (tk tokens) warnEndpoint(log *slog.Logger, functions map[string]string) {
	if _, ok := functions[server.ConnectFunction]; ok && len(tk.secrets.values) > 0 {
		log.Warn("ConnectFunction runs on an endpoint: it checks signed tokens with its own TOKEN_SECRET_ID, not --token-secret")
	}
}

// secretFlag collects --token-secret. As with --api-key, the first flag
// replaces the environment's secrets, and a secret is never echoed: String
// shows a count, and no error quotes a value.
type secretFlag struct {
	values  [][]byte
	fromCLI bool
}

func (f *secretFlag) String() string {
	if f == nil || len(f.values) == 0 {
		return ""
	}
	return fmt.Sprintf("%d secret(s)", len(f.values))
}

func (f *secretFlag) Set(v string) error {
	if !f.fromCLI {
		f.values, f.fromCLI = nil, true
	}
	if v = strings.TrimSpace(v); v == "" {
		return errors.New("must not be empty")
	}
	f.values = append(f.values, []byte(v))
	return nil
}
