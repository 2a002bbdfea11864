package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/auth/awssecrets"
	"github.com/wsnotify/wsnotify/shared/deadletter"
	"github.com/wsnotify/wsnotify/shared/handler"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/push/apigw"
	"github.com/wsnotify/wsnotify/shared/store/dynamo"
)

// pushAttempts bounds the Management API attempts per message: a throttled
// push is retried with backoff, but one slow connection cannot hold a
// fan-out worker for long.
const pushAttempts = 4

// Build makes the Notifier the functions share: DynamoDB store and keys,
// Management API pusher, and signed tokens when a token secret is named. Mains call it once, at cold start, so SDK clients
// and their connection pools live across invocations.
func Build(ctx context.Context, cfg Config, log *slog.Logger) (*notify.Notifier, error) {
	concurrency := cfg.FanoutConcurrency
	if concurrency <= 0 {
		concurrency = notify.DefaultConcurrency
	}
	awsCfg, err := loadAWSConfig(ctx, pooledHTTPClient(concurrency))
	if err != nil {
		return nil, err
	}
	db := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if cfg.DynamoDBEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.DynamoDBEndpoint)
		}
	})
	store := dynamo.New(db, cfg.TableName)
	pusher := newPusher(awsCfg, cfg.ManagementEndpoint, log)
	authn := auth.NewAuthenticator(store)
	if cfg.TokenSecretID != "" {
		// The client is cheap to build; the secret itself is read on the
		// first signed token, so API-key connects never wait for it.
		secrets := awssecrets.New(secretsmanager.NewFromConfig(awsCfg), cfg.TokenSecretID)
		authn.WithTokens(auth.NewTokenVerifier(secrets, auth.TokenConfig{MaxTTL: cfg.TokenMaxTTL}))
	}
	return notify.New(authn, store, pusher, log, notify.Config{Concurrency: concurrency,
		HistoryTTL: cfg.HistoryTTL, HistoryMaxEvents: cfg.HistoryMaxEvents}), nil
}

// newPusher is the Management API pusher over awsCfg's HTTP client.
func newPusher(awsCfg aws.Config, endpoint string, log *slog.Logger) *apigw.Pusher {
	return apigw.New(apigw.NewClient(awsCfg, endpoint, pushAttempts), log)
}

// loadAWSConfig is the runtime's AWS configuration over httpClient.
func loadAWSConfig(ctx context.Context, httpClient *awshttp.BuildableClient) (aws.Config, error) {
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithHTTPClient(httpClient))
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return awsCfg, nil
}

// JobDeadLetters returns the job dead-letter queue cfg names, or nil when it
// names none. It is called at cold start; a configuration that cannot be
// loaded ends the process, as in Start.
func JobDeadLetters(ctx context.Context, cfg Config, log *slog.Logger) handler.DeadLetters {
	if cfg.JobDeadLetterQueueURL == "" {
		return nil
	}
	awsCfg, err := loadAWSConfig(ctx, HTTPClient())
	if err != nil {
		log.Error("init", "err", err)
		os.Exit(1)
	}
	return deadletter.New(sqs.NewFromConfig(awsCfg), cfg.JobDeadLetterQueueURL)
}

// Start is the main of function f: it reads f's configuration, builds the
// Notifier and starts the runtime with the handler that handlerFor returns.
// A bad configuration ends the process during init, which Lambda reports as
// an init error carrying the message that names the variable.
func Start(f Function, handlerFor func(n *notify.Notifier, cfg Config, log *slog.Logger) any) {
	cfg := mustConfig(f)
	log := Logger(cfg.LogLevel)
	tuneGC(cfg.MemorySize)
	n, err := Build(context.Background(), cfg, log)
	if err != nil {
		log.Error("init", "err", err)
		os.Exit(1)
	}
	lambda.Start(handlerFor(n, cfg, log))
}

func mustConfig(f Function) Config {
	cfg, err := FromEnv(f, os.LookupEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return cfg
}
