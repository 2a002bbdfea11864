package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/wsnotify/wsnotify/shared/store/dynamo"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// stack is local mode standing in for a deployed stack: its stage URL, a
// DynamoDB table, a FIFO job events queue and an upload bucket on moto, and
// a forwarder doing what Lambda's event source mapping and S3's
// notification do in the cloud: it hands the queue's messages, and the
// bucket's object-created events, to local mode's Invoke API.
type stack struct {
	outputs map[string]string
	moto    string
	store   *dynamo.Store
}

const (
	smokeTable  = "wsnotify-smoke"
	smokeBucket = "wsnotify-uploads-smoke"
)

func startStack(t *testing.T) *stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	moto := testenv.Moto(t)
	db := testenv.Table(t, moto, smokeTable)
	q := testenv.SQSClient(moto)
	jobs, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("wsnotify-smoke-jobs.fifo"), Attributes: map[string]string{
		string(sqstypes.QueueAttributeNameFifoQueue): "true", string(sqstypes.QueueAttributeNameContentBasedDeduplication): "true"}})
	if err != nil {
		t.Fatal(err)
	}
	notices, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("wsnotify-smoke-uploads")})
	if err != nil {
		t.Fatal(err)
	}
	b := s3.New(s3.Options{BaseEndpoint: aws.String(moto), UsePathStyle: true, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	if _, err := b.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(smokeBucket)}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{
		Bucket: aws.String(smokeBucket),
		NotificationConfiguration: &s3types.NotificationConfiguration{QueueConfigurations: []s3types.QueueConfiguration{{
			QueueArn: aws.String("arn:aws:sqs:us-east-1:123456789012:wsnotify-smoke-uploads"),
			Events:   []s3types.Event{"s3:ObjectCreated:*"},
		}}},
	}); err != nil {
		t.Fatal(err)
	}

	bin := filepath.Join(t.TempDir(), "local")
	build := exec.Command("go", "build", "-o", bin, "./infra/local")
	build.Dir = testenv.RepoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build local mode: %v\n%s", err, out)
	}
	var addr string
	testenv.StartServer(t, "local mode", 1, func(ports []int) (*exec.Cmd, string) {
		addr = fmt.Sprintf("127.0.0.1:%d", ports[0])
		cmd := exec.Command(bin, "--addr", addr, "--dynamodb-endpoint", moto, "--table", smokeTable)
		cmd.Env = testenv.UserEnv()
		return cmd, "http://" + addr + "/metrics"
	})

	fctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { stop(); <-done })
	go func() {
		defer close(done)
		forward(fctx, t, q, addr, aws.ToString(jobs.QueueUrl), aws.ToString(notices.QueueUrl))
	}()
	return &stack{
		moto:  moto,
		store: dynamo.New(db, smokeTable),
		outputs: map[string]string{
			outWebSocketURL: "ws://" + addr + "/local",
			outQueueURL:     aws.ToString(jobs.QueueUrl),
			outBucket:       smokeBucket,
			outUploadPrefix: "uploads/",
			outTable:        smokeTable,
		},
	}
}

// forward hands each message of the job queue to JobEventsFunction and
// each object-created notice to S3UploadFunction, through local mode's
// Invoke API, deleting what was handed over, until ctx ends.
func forward(ctx context.Context, t *testing.T, q *sqs.Client, addr, jobs, notices string) {
	for ctx.Err() == nil {
		for queue, function := range map[string]string{jobs: "JobEventsFunction", notices: "S3UploadFunction"} {
			out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queue), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
				MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("forwarder: receive: %v", err)
				}
				return
			}
			for _, m := range out.Messages {
				payload := []byte(aws.ToString(m.Body)) // an S3 event, as S3 sends it
				if function == "JobEventsFunction" {
					payload, _ = json.Marshal(events.SQSEvent{Records: []events.SQSMessage{{MessageId: aws.ToString(m.MessageId), Body: aws.ToString(m.Body), Attributes: m.Attributes}}})
				} else if !strings.Contains(string(payload), `"Records"`) {
					payload = nil // S3's test event when the notification is set
				}
				if payload != nil {
					resp, err := http.Post("http://"+addr+"/2015-03-31/functions/"+function+"/invocations", "application/json", bytes.NewReader(payload))
					if err != nil {
						t.Errorf("forwarder: invoke %s: %v", function, err)
						continue
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || bytes.Contains(body, []byte(`"itemIdentifier"`)) {
						t.Errorf("forwarder: %s answered %d %s", function, resp.StatusCode, body)
					}
				}
				_, _ = q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queue), ReceiptHandle: m.ReceiptHandle})
			}
		}
	}
}

// writeOutputs writes outputs as describe-stacks prints them.
func writeOutputs(t *testing.T, outputs map[string]string) string {
	t.Helper()
	var list []map[string]string
	for k, v := range outputs {
		list = append(list, map[string]string{"OutputKey": k, "OutputValue": v, "Description": "test"})
	}
	data, _ := json.Marshal(list)
	path := filepath.Join(t.TempDir(), "outputs.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pointSDKAt sends the smoke test's AWS calls to endpoint.
func pointSDKAt(t *testing.T, endpoint string) {
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_DYNAMODB": endpoint, "AWS_ENDPOINT_URL_SQS": endpoint, "AWS_ENDPOINT_URL_S3": endpoint,
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_PROFILE": "", "AWS_CONFIG_FILE": os.DevNull,
	} {
		t.Setenv(k, v)
	}
}

// TestSmokeAgainstLocalMode runs every step against local mode given as a
// stack's outputs, and checks each passed and the key ends revoked.
func TestSmokeAgainstLocalMode(t *testing.T) {
	st := startStack(t)
	pointSDKAt(t, st.moto)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, []string{"-outputs", writeOutputs(t, st.outputs), "-wait", "30s"}, &out); err != nil {
		t.Fatalf("smoke failed: %v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	for _, step := range []string{"create a throw-away key", "connect", "ping", "job event through the queue", "upload through the bucket",
		"resume from the start", "revoke the key", "connect with the revoked key", "delete the uploaded object"} {
		if !strings.Contains(out.String(), "ok    "+step) {
			t.Errorf("step %q did not pass:\n%s", step, out.String())
		}
	}
	st.checkRevoked(ctx, t)
}

// checkRevoked checks that the table holds a throw-away key, revoked.
func (st *stack) checkRevoked(ctx context.Context, t *testing.T) {
	t.Helper()
	keys, err := st.store.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, k := range keys {
		if !strings.HasPrefix(k.OwnerID, "smoke-") {
			continue // local mode's own key
		}
		found++
		if !k.Revoked {
			t.Errorf("the throw-away key of %s is not revoked", k.OwnerID)
		}
	}
	if found != 1 {
		t.Errorf("the table holds %d throw-away keys, want 1", found)
	}
}

// TestSmokeReportsAFailedStepAndStillRevokesTheKey: with nothing consuming
// the queue (the event source mapping missing), the job event never
// arrives; the step fails, the run fails, and the key is revoked anyway.
func TestSmokeReportsAFailedStepAndStillRevokesTheKey(t *testing.T) {
	st := startStack(t)
	pointSDKAt(t, st.moto)
	st.outputs[outQueueURL] = strings.Replace(st.outputs[outQueueURL], "wsnotify-smoke-jobs.fifo", "wsnotify-nobody-reads.fifo", 1)
	q := testenv.SQSClient(st.moto)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("wsnotify-nobody-reads.fifo"), Attributes: map[string]string{
		string(sqstypes.QueueAttributeNameFifoQueue): "true", string(sqstypes.QueueAttributeNameContentBasedDeduplication): "true"}}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := run(ctx, []string{"-outputs", writeOutputs(t, st.outputs), "-wait", "3s"}, &out)
	if err == nil || !strings.Contains(out.String(), "FAIL  job event through the queue") {
		t.Fatalf("smoke answered %v with\n%s\nwant the job event step failed", err, out.String())
	}
	if !strings.Contains(out.String(), "ok    revoke the key") {
		t.Errorf("the key was not revoked after the failure:\n%s", out.String())
	}
	st.checkRevoked(ctx, t)
}

func TestSmokeNamesTheOutputsItLacks(t *testing.T) {
	path := writeOutputs(t, map[string]string{outWebSocketURL: "wss://example.com/prod"})
	err := run(context.Background(), []string{"-outputs", path}, io.Discard)
	for _, want := range []string{outQueueURL, outBucket, outUploadPrefix, outTable} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name the missing output %s", err, want)
		}
	}
}
