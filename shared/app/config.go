// Package app builds the service's dependencies for the Lambda mains: config
// from environment variables, validated once at cold start, then the SDK
// clients, store, pusher and Notifier every function shares. A main is the
// constructor chain and lambda.Start, nothing more.
//
// Which variables each function reads is one table here (Vars). The loader
// reads through that table and nothing else, and the template checks hold
// template.yaml to it, so the table, the mains and the template cannot drift.
package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wsnotify/wsnotify/shared/handler"
	"github.com/wsnotify/wsnotify/shared/metrics/emf"
)

// Environment variables the functions read.
const (
	EnvTableName          = "TABLE_NAME"
	EnvManagementEndpoint = "MANAGEMENT_API_ENDPOINT"
	EnvDynamoDBEndpoint   = "DYNAMODB_ENDPOINT"
	EnvUploadPrefix       = "UPLOAD_PREFIX"
	EnvFanoutConcurrency  = "FANOUT_CONCURRENCY"
	EnvLogLevel           = "LOG_LEVEL"
	EnvAllowedOrigins     = "ALLOWED_ORIGINS"
	// EnvJobDeadLetterQueueURL names the queue the job events function
	// sends records that can never succeed to (optional: without it they
	// are reported failed and reach that queue through SQS's redrive).
	EnvJobDeadLetterQueueURL = "JOB_DEAD_LETTER_QUEUE_URL"
	// EnvTokenSecretID names the Secrets Manager secret of signed tokens
	// (empty: signed tokens off); EnvTokenMaxTTL bounds their lifetime.
	EnvTokenSecretID = "TOKEN_SECRET_ID"
	EnvTokenMaxTTL   = "TOKEN_MAX_TTL"
	// EnvTokenAudience and EnvTokenIssuer, when set, are required in every
	// signed token: its aud must name the one, its iss be the other.
	EnvTokenAudience = "TOKEN_AUDIENCE"
	EnvTokenIssuer   = "TOKEN_ISSUER"
	// EnvHistoryTTL and EnvHistoryMaxEvents bound each owner's history of
	// events for resume: kept this long, and at most this many.
	EnvHistoryTTL       = "HISTORY_TTL"
	EnvHistoryMaxEvents = "HISTORY_MAX_EVENTS"
	// EnvMetricsNamespace is the CloudWatch namespace of the functions'
	// metrics (default DefaultMetricsNamespace).
	EnvMetricsNamespace = "METRICS_NAMESPACE"
	// EnvFanoutFunction names the fan-out function (name or ARN) a
	// publishing function hands its large fan-outs to (empty: none), and
	// EnvHandoffAbove the connections above which it does (shared/handoff).
	EnvFanoutFunction = "FANOUT_FUNCTION_NAME"
	EnvHandoffAbove   = "HANDOFF_ABOVE"
	// EnvMemorySize is the function's MemorySize in MB, which Lambda sets
	// (the template may not): the garbage collector's limit is a share of it.
	EnvMemorySize = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
)

// DefaultHandoffAbove is HANDOFF_ABOVE's default: an owner of more
// connection records than this has its publishes' pushes handed to the
// fan-out function. Near it, a 128 MB function's own fan-out and a hand-off
// to 512 MB take about as long (measured crossing at 70 to 140
// connections, docs/architecture.md "Large fan-outs"); above it the
// hand-off is faster, for an invoke and the caller's wait, a fraction of a
// percent of what the messages to so many connections cost.
const DefaultHandoffAbove = 100

// DefaultMetricsNamespace is the metrics' namespace when none is set.
const DefaultMetricsNamespace = "wsnotify"

// Function is a Lambda function, named by its logical id in template.yaml.
type Function string

// The functions of template.yaml.
const (
	ConnectFunction    Function = "ConnectFunction"
	DisconnectFunction Function = "DisconnectFunction"
	DefaultFunction    Function = "DefaultFunction"
	JobEventsFunction  Function = "JobEventsFunction"
	PublishFunction    Function = "PublishFunction"
	S3UploadFunction   Function = "S3UploadFunction"
	FanoutFunction     Function = "FanoutFunction"
)

// Var is an environment variable a function reads.
type Var struct {
	// Name is the variable's name, one of the Env constants.
	Name string
	// Template says template.yaml sets the variable. One it leaves unset is
	// set by Lambda itself, or an override for tests and local runs whose
	// default the cloud uses.
	Template bool
}

// setting reads one variable into a Config.
type setting struct {
	Var
	// read stores value (trimmed; "" when unset) in cfg, or says, naming
	// the variable, what is wrong with it.
	read func(cfg *Config, value string) error
}

var (
	tableName = setting{Var{EnvTableName, true}, func(c *Config, v string) error {
		if v == "" {
			return fmt.Errorf("%s is not set: name of the connections table", EnvTableName)
		}
		c.TableName = v
		return nil
	}}
	managementEndpoint = setting{Var{EnvManagementEndpoint, true}, func(c *Config, v string) error {
		if v == "" {
			return fmt.Errorf("%s is not set: https://{api-id}.execute-api.{region}.amazonaws.com/{stage}", EnvManagementEndpoint)
		}
		c.ManagementEndpoint = v
		return checkURL(EnvManagementEndpoint, v)
	}}
	dynamoDBEndpoint = setting{Var{EnvDynamoDBEndpoint, false}, func(c *Config, v string) error {
		c.DynamoDBEndpoint = v
		if v == "" {
			return nil
		}
		return checkURL(EnvDynamoDBEndpoint, v)
	}}
	uploadPrefix = setting{Var{EnvUploadPrefix, true}, func(c *Config, v string) error {
		c.UploadPrefix = v
		return nil
	}}
	fanoutConcurrency = setting{Var{EnvFanoutConcurrency, true}, func(c *Config, v string) error {
		if v == "" {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return fmt.Errorf("%s must be a whole number from 1 to 1000, got %q", EnvFanoutConcurrency, v)
		}
		c.FanoutConcurrency = n
		return nil
	}}
	allowedOrigins = setting{Var{EnvAllowedOrigins, true}, func(c *Config, v string) (err error) {
		if c.AllowedOrigins, err = handler.ParseOrigins(v); err != nil {
			return fmt.Errorf("%s: %w (a comma-separated list of [scheme://]host[:port] with * wildcards; empty: any origin)", EnvAllowedOrigins, err)
		}
		return nil
	}}
	jobDeadLetterQueue = setting{Var{EnvJobDeadLetterQueueURL, true}, func(c *Config, v string) error {
		c.JobDeadLetterQueueURL = v
		if v == "" {
			return nil
		}
		return checkURL(EnvJobDeadLetterQueueURL, v)
	}}
	tokenSecretID = setting{Var{EnvTokenSecretID, true}, func(c *Config, v string) error {
		c.TokenSecretID = v
		return nil
	}}
	tokenMaxTTL = setting{Var{EnvTokenMaxTTL, true}, func(c *Config, v string) error {
		if v == "" {
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("%s must be a positive duration such as 24h or 30m, got %q", EnvTokenMaxTTL, v)
		}
		c.TokenMaxTTL = d
		return nil
	}}
	tokenAudience = setting{Var{EnvTokenAudience, true}, func(c *Config, v string) error {
		c.TokenAudience = v
		return nil
	}}
	tokenIssuer = setting{Var{EnvTokenIssuer, true}, func(c *Config, v string) error {
		c.TokenIssuer = v
		return nil
	}}
	historyTTL = setting{Var{EnvHistoryTTL, true}, func(c *Config, v string) error {
		if v == "" {
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute || d > 30*24*time.Hour {
			return fmt.Errorf("%s must be a duration from 1m to 720h such as 24h, got %q", EnvHistoryTTL, v)
		}
		c.HistoryTTL = d
		return nil
	}}
	historyMaxEvents = setting{Var{EnvHistoryMaxEvents, true}, func(c *Config, v string) error {
		if v == "" {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000000 {
			return fmt.Errorf("%s must be a whole number from 1 to 1000000, got %q", EnvHistoryMaxEvents, v)
		}
		c.HistoryMaxEvents = n
		return nil
	}}
	fanoutFunction = setting{Var{EnvFanoutFunction, true}, func(c *Config, v string) error {
		c.FanoutFunction = v
		return nil
	}}
	handoffAbove = setting{Var{EnvHandoffAbove, true}, func(c *Config, v string) error {
		c.HandoffAbove = DefaultHandoffAbove
		if v == "" {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100000 {
			return fmt.Errorf("%s must be a whole number of connections from 0 to 100000, got %q", EnvHandoffAbove, v)
		}
		c.HandoffAbove = n
		return nil
	}}
	metricsNamespace = setting{Var{EnvMetricsNamespace, true}, func(c *Config, v string) error {
		c.MetricsNamespace = DefaultMetricsNamespace
		if v == "" {
			return nil
		}
		if err := emf.CheckNamespace(v); err != nil {
			return fmt.Errorf("%s: %w", EnvMetricsNamespace, err)
		}
		c.MetricsNamespace = v
		return nil
	}}
	memorySize = setting{Var{EnvMemorySize, false}, func(c *Config, v string) error {
		if v == "" {
			return nil // not in Lambda
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("%s must be a whole number of MB, got %q", EnvMemorySize, v)
		}
		c.MemorySize = n
		return nil
	}}
	logLevel = setting{Var{EnvLogLevel, true}, func(c *Config, v string) error {
		if v != "" && c.LogLevel.UnmarshalText([]byte(v)) != nil {
			return fmt.Errorf("%s must be debug, info, warn or error, got %q", EnvLogLevel, v)
		}
		return nil
	}}
)

// functions is the table: the variables each function's main reads.
var functions = map[Function][]setting{
	ConnectFunction:    {tableName, managementEndpoint, dynamoDBEndpoint, allowedOrigins, tokenSecretID, tokenMaxTTL, tokenAudience, tokenIssuer, metricsNamespace, logLevel, memorySize},
	DisconnectFunction: {tableName, managementEndpoint, dynamoDBEndpoint, metricsNamespace, logLevel, memorySize},
	// $default answers a ping through its route response; a resume reads
	// the history and posts the replay through the Management API.
	DefaultFunction:   {tableName, managementEndpoint, dynamoDBEndpoint, historyMaxEvents, metricsNamespace, logLevel, memorySize},
	JobEventsFunction: {tableName, managementEndpoint, dynamoDBEndpoint, fanoutConcurrency, jobDeadLetterQueue, historyTTL, historyMaxEvents, metricsNamespace, logLevel, memorySize},
	// The publish API: publishes and presence, through the HTTP API. A
	// small function: the fan-outs of large owners go to FanoutFunction.
	PublishFunction:  {tableName, managementEndpoint, dynamoDBEndpoint, fanoutConcurrency, historyTTL, historyMaxEvents, fanoutFunction, handoffAbove, metricsNamespace, logLevel, memorySize},
	S3UploadFunction: {tableName, managementEndpoint, dynamoDBEndpoint, fanoutConcurrency, uploadPrefix, historyTTL, historyMaxEvents, metricsNamespace, logLevel, memorySize},
	// The other side of PublishFunction's hand-off: lists an owner's
	// connections and posts a frame to them (notify.Notifier.FanOut).
	FanoutFunction: {tableName, managementEndpoint, dynamoDBEndpoint, fanoutConcurrency, metricsNamespace, logLevel, memorySize},
}

// Functions returns every function, sorted.
func Functions() []Function {
	out := make([]Function, 0, len(functions))
	for f := range functions {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// Vars returns the variables f's main reads: exactly those FromEnv looks up.
// It is nil for a function the table does not know.
func (f Function) Vars() []Var {
	var out []Var
	for _, s := range functions[f] {
		out = append(out, s.Var)
	}
	return out
}

// Config is what a function needs from its environment. A field whose
// variable the function does not read (Vars) keeps its zero value.
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
	// AllowedOrigins are the browser origins $connect accepts (zero: any).
	AllowedOrigins handler.Origins
	// LogLevel is debug, info, warn or error (default info).
	LogLevel slog.Level
	// JobDeadLetterQueueURL is the job dead-letter queue's URL (job events function).
	JobDeadLetterQueueURL string
	// TokenSecretID names the Secrets Manager secret holding the secrets of
	// signed tokens (awssecrets); empty turns signed tokens off. Only the
	// $connect function is given it.
	TokenSecretID string
	// HistoryTTL and HistoryMaxEvents bound each owner's history (0: notify's defaults).
	HistoryTTL       time.Duration
	HistoryMaxEvents int
	// TokenMaxTTL is how far ahead a signed token's exp may lie (0: auth's default).
	TokenMaxTTL time.Duration
	// TokenAudience and TokenIssuer, when set, must be a signed token's
	// aud (one of them) and iss.
	TokenAudience string
	TokenIssuer   string
	// MetricsNamespace is the CloudWatch namespace the function's metrics
	// go to (DefaultMetricsNamespace when the variable is unset).
	MetricsNamespace string
	// FanoutFunction names the function large fan-outs are handed to
	// (empty: none); HandoffAbove is the owner's connections above which
	// they are. The Invoke API's endpoint is the SDK's (tests point
	// AWS_ENDPOINT_URL_LAMBDA at the Runtime Interface Emulator).
	FanoutFunction string
	HandoffAbove   int
	// MemorySize is the function's memory in MB (0 outside Lambda).
	MemorySize int
}

// FromEnv reads f's Config from lookup (os.LookupEnv in the mains): the
// variables Vars lists for f and no other. It reports every missing or
// malformed variable at once, by name.
func FromEnv(f Function, lookup func(string) (string, bool)) (Config, error) {
	settings, ok := functions[f]
	if !ok {
		return Config{}, fmt.Errorf("configuration: unknown function %q", f)
	}
	var cfg Config
	var errs []error
	for _, s := range settings {
		v, _ := lookup(s.Name)
		if err := s.read(&cfg, strings.TrimSpace(v)); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("configuration of %s: %w", f, errors.Join(errs...))
	}
	return cfg, nil
}

func checkURL(name, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%s: %q is not an http(s) URL", name, s)
	}
	return nil
}

// Logger returns the JSON logger Lambda functions write (CloudWatch parses it).
func Logger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
