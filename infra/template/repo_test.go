package template_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsnotify/wsnotify/infra/template"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// These tests use testenv, which reads the function table from this
// package: they live outside it.

func TestCreateTableOnDynalite(t *testing.T) {
	client := testenv.DynamoDB(testenv.Dynalite(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 2 {
		if err := template.CreateTable(ctx, client, "conns"); err != nil {
			t.Fatalf("CreateTable, call %d: %v", i+1, err)
		}
	}
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("conns")})
	if err != nil {
		t.Fatal(err)
	}
	if out.Table.TableStatus != types.TableStatusActive || len(out.Table.GlobalSecondaryIndexes) != 0 {
		t.Fatalf("table %s with %d indexes, want ACTIVE with none", out.Table.TableStatus, len(out.Table.GlobalSecondaryIndexes))
	}
}
