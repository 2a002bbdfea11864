package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsnotify/wsnotify/infra/awsconf"
	"github.com/wsnotify/wsnotify/infra/template"
	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/store/dynamo"
)

// DynamoDB configures local mode's DynamoDB store (OpenDynamoDB): the store
// the Lambda functions use, on a local DynamoDB or on AWS.
type DynamoDB struct {
	// Endpoint is the URL of a local DynamoDB (dynalite, DynamoDB Local).
	// Empty: AWS itself, in the configured region, with the default
	// credentials (environment, ~/.aws, instance or container role).
	Endpoint string
	// Table names the table of connections and keys.
	Table string
	// CreateTable creates the table from template.yaml's ConnectionsTable
	// when it is missing. It is meant for a local DynamoDB: on AWS the
	// stack's table comes from the template, with its time to live, which
	// CreateTable does not set.
	CreateTable bool
}

// OpenDynamoDB returns the DynamoDB store over cfg.Table, once it has
// checked that the table exists or, with cfg.CreateTable, created it.
//
// Its PutKey accepts a key that the table already holds for the same owner,
// so that local mode restarts with the same keys; a key stored for another
// owner, or revoked, is an error.
func OpenDynamoDB(ctx context.Context, cfg DynamoDB) (Store, error) {
	if cfg.Table == "" {
		return nil, errors.New("DynamoDB store: no table name")
	}
	awsCfg, err := awsconf.Load(ctx, cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	client := awsconf.DynamoDB(awsCfg, cfg.Endpoint)
	if cfg.CreateTable {
		if err := template.CreateTable(ctx, client, cfg.Table); err != nil {
			return nil, err
		}
	} else if err := checkTable(ctx, client, cfg.Table); err != nil {
		return nil, err
	}
	return idempotentKeys{dynamo.New(client, cfg.Table)}, nil
}

// checkTable fails early, and with a hint, on a table that does not exist,
// instead of at the first connect.
func checkTable(ctx context.Context, client *dynamodb.Client, table string) error {
	_, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	var missing *types.ResourceNotFoundException
	if errors.As(err, &missing) {
		return fmt.Errorf("table %s does not exist: create it (local mode: --create-table; AWS: deploy template.yaml)", table)
	}
	if err != nil {
		return fmt.Errorf("describe table %s: %w", table, err)
	}
	return nil
}

// idempotentKeys is the DynamoDB store with a PutKey for keys that local
// mode is given on every start. The table never overwrites a key (PutKey
// gives dynamo.ErrKeyExists), so an existing one is compared instead.
type idempotentKeys struct{ *dynamo.Store }

var _ Store = idempotentKeys{}

// PutKey stores k unless the table holds it already for the same owner. A
// key stored for another owner, or revoked, is an error: local mode must not
// take a key over, nor bring a revoked one back.
func (s idempotentKeys) PutKey(ctx context.Context, k auth.Key) error {
	err := s.Store.PutKey(ctx, k)
	if !errors.Is(err, dynamo.ErrKeyExists) {
		return err
	}
	stored, err := s.LookupKey(ctx, k.Hash)
	if err != nil {
		return err
	}
	switch {
	case stored.OwnerID != k.OwnerID:
		return fmt.Errorf("the table holds this key for owner %s: %w", stored.OwnerID, dynamo.ErrKeyExists)
	case stored.Revoked:
		return errors.New("the table holds this key as revoked: give another key")
	}
	return nil
}
