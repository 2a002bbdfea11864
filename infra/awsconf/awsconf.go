// Package awsconf loads the AWS configuration of the repository's
// command-line programs (local mode, the key tool) and builds their DynamoDB
// client. The Lambda functions do not use it: they take the runtime's
// configuration as it is (shared/app).
package awsconf

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wsnotify/wsnotify/shared/app"
)

// LocalRegion is the region assumed for a local DynamoDB endpoint when the
// environment names none.
const LocalRegion = "us-east-1"

// Local credentials stand in for AWS credentials in front of a local endpoint.
// dynalite accepts any; DynamoDB Local keeps one database per access key id
// and region (unless started with -sharedDb), so these are fixed, and every
// program of this repository sees the same data.
const (
	localAccessKeyID     = "local"
	localSecretAccessKey = "local"
)

// Load returns the AWS configuration for DynamoDB at endpoint.
//
// With endpoint empty it is the SDK's default configuration (environment,
// shared config and credentials files, instance or container role), and a
// region must be configured. With an endpoint, a local DynamoDB such as
// dynalite, the region defaults to LocalRegion and fixed local credentials
// are used unless AWS_ACCESS_KEY_ID or AWS_PROFILE configures some.
func Load(ctx context.Context, endpoint string) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{config.WithHTTPClient(app.HTTPClient())}
	if endpoint != "" {
		opts = append(opts, config.WithDefaultRegion(LocalRegion))
		if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
			opts = append(opts, config.WithCredentialsProvider(
				credentials.NewStaticCredentialsProvider(localAccessKeyID, localSecretAccessKey, "")))
		}
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("no AWS region: set AWS_REGION (or a region in ~/.aws/config)")
	}
	return cfg, nil
}

// DynamoDB returns a DynamoDB client for cfg, sending its requests to
// endpoint if it is set and to the region's AWS endpoint otherwise.
func DynamoDB(cfg aws.Config, endpoint string) *dynamodb.Client {
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
}
