package template

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ConnectionsTable is the logical id of the service's DynamoDB table.
const ConnectionsTable = "ConnectionsTable"

const tableType = "AWS::DynamoDB::Table"

// tableProperties are the AWS::DynamoDB::Table properties that shape the
// table's data plane: keys, indexes, capacity mode, time to live.
type tableProperties struct {
	BillingMode             string           `yaml:"BillingMode"`
	AttributeDefinitions    []attributeDef   `yaml:"AttributeDefinitions"`
	KeySchema               []keyElement     `yaml:"KeySchema"`
	GlobalSecondaryIndexes  []secondaryIndex `yaml:"GlobalSecondaryIndexes"`
	LocalSecondaryIndexes   []secondaryIndex `yaml:"LocalSecondaryIndexes"`
	ProvisionedThroughput   *throughput      `yaml:"ProvisionedThroughput"`
	TimeToLiveSpecification *timeToLive      `yaml:"TimeToLiveSpecification"`
}

type attributeDef struct {
	AttributeName string `yaml:"AttributeName"`
	AttributeType string `yaml:"AttributeType"`
}

type keyElement struct {
	AttributeName string `yaml:"AttributeName"`
	KeyType       string `yaml:"KeyType"`
}

type secondaryIndex struct {
	IndexName  string       `yaml:"IndexName"`
	KeySchema  []keyElement `yaml:"KeySchema"`
	Projection struct {
		ProjectionType   string   `yaml:"ProjectionType"`
		NonKeyAttributes []string `yaml:"NonKeyAttributes"`
	} `yaml:"Projection"`
	ProvisionedThroughput *throughput `yaml:"ProvisionedThroughput"`
}

type throughput struct {
	ReadCapacityUnits  int64 `yaml:"ReadCapacityUnits"`
	WriteCapacityUnits int64 `yaml:"WriteCapacityUnits"`
}

type timeToLive struct {
	AttributeName string `yaml:"AttributeName"`
	Enabled       bool   `yaml:"Enabled"`
}

// translatedTableProperties are turned into CreateTableInput fields.
var translatedTableProperties = []string{
	"AttributeDefinitions", "BillingMode", "GlobalSecondaryIndexes", "KeySchema",
	"LocalSecondaryIndexes", "ProvisionedThroughput",
}

// ignoredTableProperties do not change what a local table can hold or how it
// answers: the caller names the table; time to live is set with a separate
// call dynalite lacks (and dynalite never expires items anyway); the rest is
// durability, encryption, tagging and protection.
var ignoredTableProperties = []string{
	"TableName", "TimeToLiveSpecification", "PointInTimeRecoverySpecification",
	"SSESpecification", "Tags", "DeletionProtectionEnabled", "TableClass",
	"ContributorInsightsSpecification",
}

// tableProps decodes the properties of the table logicalID, refusing any
// property this package neither translates nor deliberately ignores, so a
// template change that would make the local table differ is never dropped
// silently.
func (t *Template) tableProps(logicalID string) (tableProperties, error) {
	var p tableProperties
	r, err := t.Resource(logicalID, tableType)
	if err != nil {
		return p, err
	}
	var unknown []string
	for name := range r.Properties {
		if !slices.Contains(translatedTableProperties, name) && !slices.Contains(ignoredTableProperties, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return p, fmt.Errorf("table %s: unsupported properties %v", logicalID, unknown)
	}
	if err := r.DecodeProperties(&p); err != nil {
		return p, fmt.Errorf("table %s: %w", logicalID, err)
	}
	return p, nil
}

// CreateTableInput returns the CreateTable request for the table resource
// logicalID, named tableName. TimeToLiveSpecification is left out: it is not
// part of CreateTable (it takes UpdateTimeToLive, which dynalite lacks); see
// TimeToLiveAttribute.
func (t *Template) CreateTableInput(logicalID, tableName string) (*dynamodb.CreateTableInput, error) {
	p, err := t.tableProps(logicalID)
	if err != nil {
		return nil, err
	}
	if len(p.KeySchema) == 0 || len(p.AttributeDefinitions) == 0 {
		return nil, fmt.Errorf("table %s: KeySchema and AttributeDefinitions are required", logicalID)
	}
	in := &dynamodb.CreateTableInput{
		TableName:             aws.String(tableName),
		BillingMode:           types.BillingMode(p.BillingMode),
		KeySchema:             keySchema(p.KeySchema),
		ProvisionedThroughput: p.ProvisionedThroughput.sdk(),
	}
	for _, a := range p.AttributeDefinitions {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(a.AttributeName),
			AttributeType: types.ScalarAttributeType(a.AttributeType),
		})
	}
	for _, ix := range p.GlobalSecondaryIndexes {
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
			IndexName:             aws.String(ix.IndexName),
			KeySchema:             keySchema(ix.KeySchema),
			Projection:            ix.projection(),
			ProvisionedThroughput: ix.ProvisionedThroughput.sdk(),
		})
	}
	for _, ix := range p.LocalSecondaryIndexes {
		in.LocalSecondaryIndexes = append(in.LocalSecondaryIndexes, types.LocalSecondaryIndex{
			IndexName:  aws.String(ix.IndexName),
			KeySchema:  keySchema(ix.KeySchema),
			Projection: ix.projection(),
		})
	}
	return in, nil
}

// TimeToLiveAttribute returns the attribute the table logicalID expires items
// by, or "" when time to live is not enabled.
func (t *Template) TimeToLiveAttribute(logicalID string) (string, error) {
	p, err := t.tableProps(logicalID)
	if err != nil {
		return "", err
	}
	if p.TimeToLiveSpecification == nil || !p.TimeToLiveSpecification.Enabled {
		return "", nil
	}
	return p.TimeToLiveSpecification.AttributeName, nil
}

func keySchema(ks []keyElement) []types.KeySchemaElement {
	out := make([]types.KeySchemaElement, 0, len(ks))
	for _, k := range ks {
		out = append(out, types.KeySchemaElement{
			AttributeName: aws.String(k.AttributeName),
			KeyType:       types.KeyType(k.KeyType),
		})
	}
	return out
}

func (ix secondaryIndex) projection() *types.Projection {
	return &types.Projection{
		ProjectionType:   types.ProjectionType(ix.Projection.ProjectionType),
		NonKeyAttributes: ix.Projection.NonKeyAttributes,
	}
}

func (t *throughput) sdk() *types.ProvisionedThroughput {
	if t == nil {
		return nil
	}
	return &types.ProvisionedThroughput{
		ReadCapacityUnits:  aws.Int64(t.ReadCapacityUnits),
		WriteCapacityUnits: aws.Int64(t.WriteCapacityUnits),
	}
}

// TableAPI is the part of the DynamoDB client CreateTable uses.
type TableAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

// tableActiveTimeout bounds the wait for a new table to become ACTIVE: a few
// seconds on DynamoDB, at once on dynalite.
const tableActiveTimeout = 2 * time.Minute

// CreateTable creates the repository template's ConnectionsTable under the
// name tableName, unless a table of that name exists, and waits until it is
// ACTIVE. An existing table is not compared with the template.
func CreateTable(ctx context.Context, client TableAPI, tableName string) error {
	t, err := Repo()
	if err != nil {
		return err
	}
	return t.CreateTable(ctx, client, ConnectionsTable, tableName)
}

// CreateTable creates the table resource logicalID under the name tableName,
// unless a table of that name exists, and waits until it is ACTIVE.
func (t *Template) CreateTable(ctx context.Context, client TableAPI, logicalID, tableName string) error {
	in, err := t.CreateTableInput(logicalID, tableName)
	if err != nil {
		return err
	}
	_, err = client.CreateTable(ctx, in)
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create table %s: %w", tableName, err)
	}
	w := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		// The default first retry comes after 20 s; dynalite activates a
		// table within milliseconds of creating it.
		o.MinDelay = 50 * time.Millisecond
		o.MaxDelay = 5 * time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tableName)}, tableActiveTimeout); err != nil {
		return fmt.Errorf("wait for table %s: %w", tableName, err)
	}
	return nil
}
