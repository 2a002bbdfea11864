// Package app builds the service's dependencies for the Lambda mains: config
// from environment variables, validated once at cold start, then the SDK
// clients, store, pusher and Notifier every function shares. A main is the
// constructor chain and lambda.Start, nothing more.
package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Environment variables the functions read. template.yaml sets each one for
// the functions that read it (a test checks that).
const (
	EnvTableName          = "TABLE_NAME"
	EnvManagementEndpoint = "MANAGEMENT_API_ENDPOINT"
	EnvDynamoDBEndpoint   = "DYNAMODB_ENDPOINT"
	EnvUploadPrefix       = "UPLOAD_PREFIX"
	EnvFanoutConcurrency  = "FANOUT_CONCURRENCY"
	EnvLogLevel           = "LOG_LEVEL"
	EnvTokenSecretID      = "TOKEN_SECRET_ID"
	EnvTokenMaxTTL        = "TOKEN_MAX_TTL"
)

// Config is what a function needs from its environment.
type Config struct {
	// TableName is the connections and keys table.
	TableName string
	// ManagementEndpoint is the Management API's base URL including the
	// stage, https://{api}.execute-api.{region}.amazonaws.com/{stage}. It is
	// built from the API id, not from a request's domainName, which names a
	// custom domain when there is one.
	ManagementEndpoint string
	// DynamoDBEndpoint overrides DynamoDB's endpoint (a local dynalite in tests).
	DynamoDBEndpoint string
	// UploadPrefix is where uploads land (S3 upload function).
	UploadPrefix string
	// FanoutConcurrency bounds the pushes in flight per publish (0: default).
	FanoutConcurrency int
	// LogLevel is debug, info, warn or error.
	LogLevel slog.Level
	// TokenSecretID names the Secrets Manager secret holding the secrets of
	// signed tokens (awssecrets); empty turns signed tokens off. Only the
	// $connect function is given it.
	TokenSecretID string
	// TokenMaxTTL is how far ahead a signed token's exp may lie (0: auth's default).
	TokenMaxTTL time.Duration
}

// FromEnv reads the Config from lookup (os.LookupEnv in the mains) and
// reports every missing or malformed variable at once, by name.
func FromEnv(lookup func(string) (string, bool)) (Config, error) {
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	var errs []error
	cfg := Config{
		TableName:          get(EnvTableName),
		ManagementEndpoint: get(EnvManagementEndpoint),
		DynamoDBEndpoint:   get(EnvDynamoDBEndpoint),
		UploadPrefix:       get(EnvUploadPrefix),
		TokenSecretID:      get(EnvTokenSecretID),
	}
	if cfg.TableName == "" {
		errs = append(errs, fmt.Errorf("%s is not set: name of the connections table", EnvTableName))
	}
	if cfg.ManagementEndpoint == "" {
		errs = append(errs, fmt.Errorf("%s is not set: https://{api-id}.execute-api.{region}.amazonaws.com/{stage}", EnvManagementEndpoint))
	} else if err := checkURL(cfg.ManagementEndpoint); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", EnvManagementEndpoint, err))
	}
	if cfg.DynamoDBEndpoint != "" {
		if err := checkURL(cfg.DynamoDBEndpoint); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvDynamoDBEndpoint, err))
		}
	}
	if v := get(EnvFanoutConcurrency); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			errs = append(errs, fmt.Errorf("%s must be a whole number from 1 to 1000, got %q", EnvFanoutConcurrency, v))
		}
		cfg.FanoutConcurrency = n
	}
	if v := get(EnvTokenMaxTTL); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be a positive duration such as 24h or 30m, got %q", EnvTokenMaxTTL, v))
		}
		cfg.TokenMaxTTL = d
	}
	level, err := LogLevelFromEnv(lookup)
	if err != nil {
		errs = append(errs, err)
	}
	cfg.LogLevel = level
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("configuration: %w", errors.Join(errs...))
	}
	return cfg, nil
}

// LogLevelFromEnv reads LOG_LEVEL (default info).
func LogLevelFromEnv(lookup func(string) (string, bool)) (slog.Level, error) {
	var level slog.Level
	v, _ := lookup(EnvLogLevel)
	if v = strings.TrimSpace(v); v == "" {
		return level, nil
	}
	if err := level.UnmarshalText([]byte(v)); err != nil {
		return level, fmt.Errorf("%s must be debug, info, warn or error, got %q", EnvLogLevel, v)
	}
	return level, nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}

// Logger returns the JSON logger Lambda functions write (CloudWatch parses it).
func Logger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
