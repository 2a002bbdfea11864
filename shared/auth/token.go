package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsnotify/wsnotify/shared/event"
)

// Signed tokens are what a browser should hold instead of an API key: a JWT
// the app's backend mints for one owner, valid for minutes. The service
// accepts one in the same ?token= parameter as a key and tells the two apart
// by shape (IsSignedToken).
//
// Only HS256 is accepted, with a secret shared between the backend and the
// service; "alg":"none" and every other algorithm are refused, so a token can
// never choose how it is checked. The secrets come from a SecretSource, first
// the one that signs, then older ones still accepted while a rotation runs.

// Limits and defaults of signed tokens.
const (
	// DefaultTokenMaxTTL is how far ahead a token's exp may lie: a token
	// that lives longer is refused, so that a leaked one stops working soon.
	DefaultTokenMaxTTL = 24 * time.Hour
	// DefaultTokenLeeway is the clock skew allowed between the minting
	// backend and the service when checking exp, nbf and iat.
	DefaultTokenLeeway = 10 * time.Second
	// MinSecretBytes is the shortest secret accepted. HS256's key is as
	// strong as its secret; 32 bytes (256 bits) match the hash.
	MinSecretBytes = 32
	// MaxTokenBytes bounds a token before any decoding: a real one is a few
	// hundred bytes, and API Gateway caps the whole query string far below
	// what would hurt, but local mode has no such cap.
	MaxTokenBytes = 4096
)

// signingMethod is the only algorithm tokens may use.
var signingMethod = jwt.SigningMethodHS256

// SecretSource gives the secrets that sign tokens: the first signs new
// tokens, every one verifies. Local mode's come from its flags
// (StaticSecrets); the Lambda function's from AWS Secrets Manager.
type SecretSource interface {
	TokenSecrets(ctx context.Context) ([][]byte, error)
}

// StaticSecrets is a SecretSource over secrets known at start-up. Check
// them with CheckSecrets first.
type StaticSecrets [][]byte

// TokenSecrets implements SecretSource.
func (s StaticSecrets) TokenSecrets(context.Context) ([][]byte, error) { return s, nil }

// CheckSecrets refuses an empty list and any secret shorter than
// MinSecretBytes. Errors name a secret by its position, never by its value.
func CheckSecrets(secrets [][]byte) error {
	if len(secrets) == 0 {
		return errors.New("no token secret given")
	}
	var errs []error
	for i, s := range secrets {
		if len(s) < MinSecretBytes {
			errs = append(errs, fmt.Errorf("token secret %d of %d is %d bytes: at least %d are needed (e.g. 32 random bytes, base64-encoded)", i+1, len(secrets), len(s), MinSecretBytes))
		}
	}
	return errors.Join(errs...)
}

// ParseSecretList reads secrets in the form they are kept in AWS Secrets
// Manager: a JSON array of strings, the signing secret first, e.g.
// ["new secret …", "old secret …"]. Each string's UTF-8 bytes are one secret,
// as the usual JWT libraries use a string secret. The list is checked with
// CheckSecrets. Errors never quote the content.
func ParseSecretList(data []byte) ([][]byte, error) {
	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, errors.New(`token secrets must be a JSON array of strings, the signing secret first: ["secret 1", "secret 2"]`)
	}
	secrets := make([][]byte, len(list))
	for i, s := range list {
		secrets[i] = []byte(s)
	}
	if err := CheckSecrets(secrets); err != nil {
		return nil, err
	}
	return secrets, nil
}

// TokenConfig configures a TokenVerifier. Zero values take the defaults.
type TokenConfig struct {
	// MaxTTL is how far ahead exp may lie (default DefaultTokenMaxTTL).
	MaxTTL time.Duration
	// Leeway is the clock skew allowed on exp, nbf and iat (default DefaultTokenLeeway).
	Leeway time.Duration
	// Audience and Issuer, when set, are required: a token must name
	// Audience among its aud and carry iss Issuer, so that a token signed
	// with the same secret for another service opens nothing here.
	Audience string
	Issuer   string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// TokenVerifier checks signed tokens.
type TokenVerifier struct {
	secrets SecretSource
	cfg     TokenConfig
	parser  *jwt.Parser
}

// NewTokenVerifier returns a verifier of tokens signed with secrets.
func NewTokenVerifier(secrets SecretSource, cfg TokenConfig) *TokenVerifier {
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = DefaultTokenMaxTTL
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = DefaultTokenLeeway
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &TokenVerifier{secrets: secrets, cfg: cfg, parser: jwt.NewParser(
		jwt.WithValidMethods([]string{signingMethod.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
		// One spelling per byte string: a token cannot be altered into
		// another text that verifies the same.
		jwt.WithStrictDecoding(),
	)}
}

// Verify returns the owner (sub) of a valid token. An invalid one gives a
// *Refusal (errors.Is ErrUnauthorized) naming the reason; a failure to get
// the secrets gives their source's error.
func (v *TokenVerifier) Verify(ctx context.Context, token string) (string, error) {
	owner, _, err := v.verify(ctx, token)
	return owner, err
}

// verify is Verify, also returning when the token expires (its exp).
func (v *TokenVerifier) verify(ctx context.Context, token string) (string, time.Time, error) {
	if len(token) > MaxTokenBytes {
		return "", time.Time{}, refuse("signed token longer than %d bytes", MaxTokenBytes)
	}
	if !IsSignedToken(token) {
		// Go's base64 decoders skip \r and \n, so without this a token with
		// a line break inside would verify as the same token: one token, one
		// spelling.
		return "", time.Time{}, refuse("malformed signed token: not three base64url parts")
	}
	secrets, err := v.secrets.TokenSecrets(ctx)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token secrets: %w", err)
	}
	if len(secrets) == 0 {
		return "", time.Time{}, errors.New("token secrets: none configured")
	}
	keys := make([]jwt.VerificationKey, len(secrets))
	for i, s := range secrets {
		keys[i] = s
	}
	var claims jwt.RegisteredClaims
	parsed, err := v.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) {
		return jwt.VerificationKeySet{Keys: keys}, nil
	})
	if err != nil {
		return "", time.Time{}, refuse("%s", tokenReason(parsed, err))
	}
	// The library checks that exp is there and not past; how far ahead it
	// may lie is this service's rule.
	if ahead := claims.ExpiresAt.Sub(v.cfg.Now()); ahead > v.cfg.MaxTTL+v.cfg.Leeway {
		return "", time.Time{}, refuse("signed token expires %s ahead, more than the %s allowed", ahead.Round(time.Second), v.cfg.MaxTTL)
	}
	if a := v.cfg.Audience; a != "" && !slices.Contains(claims.Audience, a) {
		if len(claims.Audience) == 0 {
			return "", time.Time{}, refuse("signed token has no aud: this service requires %q", a)
		}
		return "", time.Time{}, refuse("signed token aud does not name this service (%q)", a)
	}
	if i := v.cfg.Issuer; i != "" && claims.Issuer != i {
		if claims.Issuer == "" {
			return "", time.Time{}, refuse("signed token has no iss: this service requires %q", i)
		}
		return "", time.Time{}, refuse("signed token iss is not the issuer this service trusts (%q)", i)
	}
	if claims.Subject == "" {
		return "", time.Time{}, refuse("signed token has no sub")
	}
	if !event.ValidOwnerID(claims.Subject) {
		return "", time.Time{}, refuse("signed token sub is not an owner id (1-%d characters of A-Z a-z 0-9 . _ : @ -)", event.MaxOwnerIDLength)
	}
	return claims.Subject, claims.ExpiresAt.Time, nil
}

// tokenReasons say why the library refused a token, in words of our own:
// its messages can quote decoding errors, and a log line must stay free of
// the token's content. The first match wins.
var tokenReasons = []struct {
	err    error
	reason string
}{
	{jwt.ErrTokenMalformed, "signed token malformed"},
	{jwt.ErrTokenUnverifiable, "signed token names an unknown or no algorithm (only HS256 is accepted)"},
	{jwt.ErrTokenSignatureInvalid, "signed token signature matches no secret"},
	{jwt.ErrTokenRequiredClaimMissing, "signed token has no exp"},
	{jwt.ErrTokenExpired, "signed token expired"},
	{jwt.ErrTokenNotValidYet, "signed token not valid yet (nbf)"},
	{jwt.ErrTokenUsedBeforeIssued, "signed token issued in the future (iat)"},
	{jwt.ErrInvalidType, "signed token has a claim of the wrong type"},
}

// tokenReason says why the library refused parsed (see tokenReasons).
func tokenReason(parsed *jwt.Token, err error) string {
	// The library refuses an algorithm outside WithValidMethods as an
	// invalid signature; the parsed header tells the two apart.
	if errors.Is(err, jwt.ErrTokenSignatureInvalid) && parsed != nil && parsed.Method != nil && parsed.Method.Alg() != signingMethod.Alg() {
		return "signed token algorithm is not HS256"
	}
	for _, r := range tokenReasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "signed token invalid"
}

// IsSignedToken reports whether token has a JWT's shape: three base64url
// segments separated by dots, the header and the claims not empty (the
// signature is, in an "alg":"none" token, which is then refused for its
// algorithm). API keys ("wsn_…") have no dots, so the two never overlap;
// local mode refuses to configure an API key of this shape.
func IsSignedToken(token string) bool {
	if strings.Count(token, ".") != 2 {
		return false
	}
	for i, seg := range strings.Split(token, ".") {
		if seg == "" && i < 2 {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// TokenScope is what a token names besides its owner: the service it is
// for (aud) and who issued it (iss). Empty fields are left out.
type TokenScope struct {
	Audience string
	Issuer   string
}

// MintToken returns a token for owner, valid from now for ttl, signed with
// secret, naming scope's audience and issuer if given: what an app's backend
// does for each browser session (docs/keys-and-tokens.md shows it in Node and Go).
// infra/keys mint and the tests use it.
func MintToken(secret []byte, owner string, ttl time.Duration, now time.Time, scope ...TokenScope) (string, error) {
	if len(secret) < MinSecretBytes {
		return "", fmt.Errorf("token secret is %d bytes: at least %d are needed", len(secret), MinSecretBytes)
	}
	if !event.ValidOwnerID(owner) {
		return "", fmt.Errorf("owner %q: must be 1-%d characters of A-Z a-z 0-9 . _ : @ -", owner, event.MaxOwnerIDLength)
	}
	if ttl <= 0 {
		return "", fmt.Errorf("ttl %v: must be positive", ttl)
	}
	claims := jwt.RegisteredClaims{
		Subject:   owner,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	for _, sc := range scope {
		if sc.Audience != "" {
			claims.Audience = append(claims.Audience, sc.Audience)
		}
		if sc.Issuer != "" {
			claims.Issuer = sc.Issuer
		}
	}
	token, err := jwt.NewWithClaims(signingMethod, claims).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return token, nil
}

// SplitSecrets reads a comma-separated list of secrets, as the
// WSNOTIFY_TOKEN_SECRETS variable holds them: the signing secret first.
// Blank entries are dropped. Check the result with CheckSecrets.
func SplitSecrets(list string) [][]byte {
	var secrets [][]byte
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			secrets = append(secrets, []byte(s))
		}
	}
	return secrets
}
