package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/wsnotify/wsnotify/infra/local/server"
	"github.com/wsnotify/wsnotify/shared/auth"
)

// Environment variables of the signed-token flags. infra/keys mint reads
// the first one too, so one environment mints what local mode accepts.
const (
	envTokenSecrets  = "WSNOTIFY_TOKEN_SECRETS"
	envTokenMaxTTL   = "WSNOTIFY_TOKEN_MAX_TTL"
	envTokenAudience = "WSNOTIFY_TOKEN_AUDIENCE"
	envTokenIssuer   = "WSNOTIFY_TOKEN_ISSUER"
)

// tokens are the flags of signed tokens: the secrets that verify them (the
// first also signs, for infra/keys mint) and how far ahead their exp may lie.
type tokens struct {
	secrets  listFlag
	maxTTL   time.Duration
	audience string // required aud, if set
	issuer   string // required iss, if set
}

// define binds the token flags to tk.
func (tk *tokens) define(fs *flags) {
	tk.maxTTL = auth.DefaultTokenMaxTTL
	tk.secrets.secret = true
	fs.value(&tk.secrets, "token-secret", envTokenSecrets,
		"a `secret` of signed tokens (HS256 JWTs in ?token=, besides API keys), at least 32 bytes; repeatable for a rotation, the first signs (infra/keys mint). None: signed tokens are refused")
	fs.durationVar(&tk.maxTTL, "token-max-ttl", envTokenMaxTTL, "refuse signed tokens whose exp lies further ahead")
	fs.stringVar(&tk.audience, "token-audience", envTokenAudience, "require this `aud` in every signed token (set it: a token signed with the same secret for another service is then refused)")
	fs.stringVar(&tk.issuer, "token-issuer", envTokenIssuer, "require this `iss` in every signed token")
}

// secretBytes returns the secrets as auth takes them.
func (tk *tokens) secretBytes() [][]byte {
	out := make([][]byte, len(tk.secrets.values))
	for i, s := range tk.secrets.values {
		out[i] = []byte(s)
	}
	return out
}

// check refuses short secrets at start-up, naming them by position only.
func (tk *tokens) check() error {
	var errs []error
	if len(tk.secrets.values) > 0 {
		if err := auth.CheckSecrets(tk.secretBytes()); err != nil {
			errs = append(errs, fmt.Errorf("--token-secret / %s: %w", envTokenSecrets, err))
		}
	}
	if tk.maxTTL <= 0 {
		errs = append(errs, fmt.Errorf("--token-max-ttl %v: must be positive", tk.maxTTL))
	}
	return errors.Join(errs...)
}

// apply turns signed tokens on in cfg when secrets are given.
func (tk *tokens) apply(cfg *server.Config) {
	if len(tk.secrets.values) > 0 {
		cfg.Tokens = auth.NewTokenVerifier(auth.StaticSecrets(tk.secretBytes()), auth.TokenConfig{MaxTTL: tk.maxTTL,
			Audience: tk.audience, Issuer: tk.issuer})
	}
}

// printBanner says whether signed tokens are on, and how to mint one.
func (tk tokens) printBanner(w io.Writer) {
	if len(tk.secrets.values) == 0 {
		return
	}
	fmt.Fprintf(w, "  Signed tokens: on, %d secret(s), exp at most %s ahead; mint one with\n", len(tk.secrets.values), tk.maxTTL)
	if tk.audience != "" || tk.issuer != "" {
		fmt.Fprintf(w, "  Signed tokens must carry aud %q and iss %q (%s and %s set them for mint)\n", tk.audience, tk.issuer, envTokenAudience, envTokenIssuer)
	}
	fmt.Fprintf(w, "    %s=<the first secret> go run ./infra/keys mint --owner <owner> --ttl 10m\n", envTokenSecrets)
}

// warnEndpoint tells that a $connect running on a Lambda endpoint checks
// tokens against its own secrets (TOKEN_SECRET_ID), not these.
func (tk tokens) warnEndpoint(log *slog.Logger, functions map[string]string) {
	if _, ok := functions[server.ConnectFunction]; ok && len(tk.secrets.values) > 0 {
		log.Warn("ConnectFunction runs on an endpoint: it checks signed tokens with its own TOKEN_SECRET_ID, not --token-secret")
	}
}
