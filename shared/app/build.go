package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/auth/awssecrets"
	"github.com/wsnotify/wsnotify/shared/deadletter"
	"github.com/wsnotify/wsnotify/shared/handler"
	"github.com/wsnotify/wsnotify/shared/handoff"
	"github.com/wsnotify/wsnotify/shared/metrics/emf"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/push/apigw"
	"github.com/wsnotify/wsnotify/shared/store/dynamo"
)

// pushAttempts bounds the Management API attempts per message: a throttled
// push is retried with backoff, but one slow connection cannot hold a
// fan-out worker for long.
const pushAttempts = 4

// Metrics receives the figures of the Notifier and of its pushes' retries:
// emf.Recorder in the functions.
type Metrics interface {
	notify.Metrics
	apigw.Metrics
}

// build makes the Notifier the functions share: DynamoDB store and keys,
// Management API pusher, and signed tokens when a token secret is named,
// reporting to m (nil: nowhere). It also returns the AWS configuration it
// loaded, for the function's other clients. Start calls it once, at cold
// start, so SDK clients and their connection pools live across invocations.
func build(ctx context.Context, cfg Config, log *slog.Logger, m Metrics) (*notify.Notifier, aws.Config, error) {
	concurrency := cfg.FanoutConcurrency
	if concurrency <= 0 {
		concurrency = notify.DefaultConcurrency
	}
	awsCfg, err := loadAWSConfig(ctx, pooledHTTPClient(concurrency))
	if err != nil {
		return nil, aws.Config{}, err
	}
	db := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if cfg.DynamoDBEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.DynamoDBEndpoint)
		}
	})
	store := dynamo.New(db, cfg.TableName)
	// A nil m stays nil in both interfaces, which take nil as "nowhere".
	// A clean publish's line is a debug line here: EventsPublished and
	// Deliveries count it, and each line is billed.
	ncfg := notify.Config{Concurrency: concurrency, HistoryTTL: cfg.HistoryTTL, HistoryMaxEvents: cfg.HistoryMaxEvents, Metrics: m,
		CleanPublishLevel: slog.LevelDebug}
	if cfg.FanoutFunction != "" {
		ncfg.Handoff, ncfg.HandoffAbove = newHandoff(awsCfg, cfg.FanoutFunction), cfg.HandoffAbove
	}
	pusher, err := newPusher(awsCfg, cfg.ManagementEndpoint, log, m)
	if err != nil {
		return nil, aws.Config{}, err
	}
	authn := auth.NewAuthenticator(store)
	if cfg.TokenSecretID != "" {
		// The client is cheap to build; the secret itself is read on the
		// first signed token, so API-key connects never wait for it.
		secrets := awssecrets.New(secretsmanager.NewFromConfig(awsCfg), cfg.TokenSecretID)
		authn.WithTokens(auth.NewTokenVerifier(secrets, auth.TokenConfig{MaxTTL: cfg.TokenMaxTTL,
			Audience: cfg.TokenAudience, Issuer: cfg.TokenIssuer}))
	}
	return notify.New(authn, store, pusher, log, ncfg), awsCfg, nil
}

// newPusher is the Management API pusher over awsCfg's HTTP client,
// reporting throttled and retried attempts to m (nil: nowhere).
func newPusher(awsCfg aws.Config, endpoint string, log *slog.Logger, m apigw.Metrics) (*apigw.Pusher, error) {
	client, err := apigw.NewClient(awsCfg, endpoint, pushAttempts, m)
	if err != nil {
		return nil, err
	}
	return apigw.New(client, log), nil
}

// newHandoff is the hand-off to the fan-out function: a Lambda client of
// its own HTTP client, whose time to the answer's headers is bounded by the
// invocation's deadline only (an invoke answers when its fan-out is done;
// the shared client gives up after 10 s).
func newHandoff(awsCfg aws.Config, function string) *handoff.Client {
	awsCfg.HTTPClient = newHTTPClient(dialTimeout, 0)
	return handoff.New(awslambda.NewFromConfig(awsCfg), function)
}

// loadAWSConfig is the runtime's AWS configuration over httpClient.
func loadAWSConfig(ctx context.Context, httpClient *awshttp.BuildableClient) (aws.Config, error) {
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithHTTPClient(httpClient))
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return awsCfg, nil
}

// Deps is what a function's handler is made of, built once at cold start.
type Deps struct {
	Notifier *notify.Notifier
	Config   Config
	Log      *slog.Logger
	// DeadLetters is the job dead-letter queue the configuration names, or
	// nil when it names none.
	DeadLetters handler.DeadLetters
}

// Start is the main of function f: it reads f's configuration, builds the
// Notifier and starts the runtime with the handler that handlerFor returns.
// Each invocation's figures go to stdout as CloudWatch metrics when it ends.
// A bad configuration ends the process during init, which Lambda reports as
// an init error carrying the message that names the variable.
func Start(f Function, handlerFor func(Deps) any) {
	cfg := mustConfig(f)
	log := Logger(cfg.LogLevel)
	tuneGC(cfg.MemorySize)
	rec, err := emf.New(os.Stdout, cfg.MetricsNamespace, functionName(f))
	if err != nil {
		log.Error("init", "err", err)
		os.Exit(1)
	}
	n, awsCfg, err := build(context.Background(), cfg, log, rec)
	if err != nil {
		log.Error("init", "err", err)
		os.Exit(1)
	}
	d := Deps{Notifier: n, Config: cfg, Log: log}
	if cfg.JobDeadLetterQueueURL != "" {
		d.DeadLetters = deadletter.New(sqs.NewFromConfig(awsCfg), cfg.JobDeadLetterQueueURL)
	}
	lambda.Start(FlushAfter(lambda.NewHandler(handlerFor(d)), rec, log))
}

// functionName is the function's name in Lambda, the metrics' FunctionName
// dimension: the name the template gives it, also in Lambda's own metrics.
// Outside Lambda (tests) it is f's logical id.
func functionName(f Function) string {
	if lambdacontext.FunctionName != "" {
		return lambdacontext.FunctionName
	}
	return string(f)
}

// Flusher writes what was recorded since its last Flush: emf.Recorder.
type Flusher interface{ Flush() error }

// FlushAfter returns h, writing m's figures after each invocation, whatever
// its outcome: they belong to that invocation, and Lambda may freeze the
// process as soon as it answers.
func FlushAfter(h lambda.Handler, m Flusher, log *slog.Logger) lambda.Handler {
	return flushing{h: h, m: m, log: log}
}

type flushing struct {
	h   lambda.Handler
	m   Flusher
	log *slog.Logger
}

func (f flushing) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	defer func() {
		if err := f.m.Flush(); err != nil {
			f.log.ErrorContext(ctx, "write metrics", "err", err)
		}
	}()
	return f.h.Invoke(ctx, payload)
}

func mustConfig(f Function) Config {
	cfg, err := FromEnv(f, os.LookupEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return cfg
}
