package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/wsnotify/wsnotify/infra/template"
)

// Functions maps each Lambda function's logical id in template.yaml to the
// directory of its main under functions/, as the template's function table
// (infra/template) gives them.
var Functions = func() map[string]string {
	tpl, err := template.Repo()
	if err != nil {
		panic(err)
	}
	fns, err := tpl.Functions()
	if err != nil {
		panic(err)
	}
	dirs := make(map[string]string, len(fns))
	for _, f := range fns {
		dirs[f.LogicalID] = f.Dir
	}
	return dirs
}()

// DynamoDB returns a client for a local DynamoDB-compatible endpoint, with
// the dummy credentials and region such a server accepts.
func DynamoDB(endpoint string, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	}, optFns...)
}

// Table creates template.yaml's connections table under name at a local
// DynamoDB endpoint (dynalite, moto) and returns a client for it.
func Table(t testing.TB, endpoint, name string) *dynamodb.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := DynamoDB(endpoint)
	if err := template.CreateTable(ctx, db, name); err != nil {
		t.Fatal(err)
	}
	return db
}

// SQSClient returns a client for a local SQS-compatible endpoint (moto),
// with the dummy credentials and region DynamoDB gets.
func SQSClient(endpoint string) *sqs.Client {
	return sqs.New(sqs.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

// FunctionEnv is the environment the Lambda mains read (shared/app),
// pointed at a local table and Management API.
func FunctionEnv(table, dynamoEndpoint, managementEndpoint string) []string {
	return []string{
		"TABLE_NAME=" + table,
		"DYNAMODB_ENDPOINT=" + dynamoEndpoint,
		"MANAGEMENT_API_ENDPOINT=" + managementEndpoint,
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
	}
}

// StartFunctions runs every function's Bootstrap under the Runtime
// Interface Emulator with env. The result is keyed by logical id.
func StartFunctions(t testing.TB, env ...string) map[string]*Lambda {
	t.Helper()
	return StartFunctionsEach(t, func(string) []string { return env })
}

// StartFunctionsEach is StartFunctions with each function's environment
// from envOf, given its logical id: its own credentials, for one.
func StartFunctionsEach(t testing.TB, envOf func(id string) []string) map[string]*Lambda {
	t.Helper()
	lambdas := make(map[string]*Lambda, len(Functions))
	for id, name := range Functions {
		lambdas[id] = StartLambda(t, Bootstrap(t, name), envOf(id)...)
	}
	return lambdas
}
