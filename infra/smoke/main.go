// Command smoke checks a deployed stack end to end, the first thing to run
// after `sam deploy`:
//
//	aws cloudformation describe-stacks --stack-name STACK \
//	    --query 'Stacks[0].Outputs' --output json > outputs.json
//	make smoke OUTPUTS=outputs.json        (or: go run ./infra/smoke -outputs outputs.json)
//
// It reads the stack's outputs, creates a throw-away API key in the stack's
// table, connects a client to the WebSocket URL, publishes a job event
// through the job events queue and an upload through the upload bucket,
// checks that the client receives both, that a second client resuming from
// the start gets them replayed, then revokes the key and checks that it is
// refused. Each step prints its result and how long it took; the exit status
// is 1 if any failed. The key is revoked and the uploaded object deleted
// even when a step fails.
//
// It uses the normal AWS configuration (AWS_PROFILE, AWS_REGION, ...), with
// the rights to put and update items in the table, send to the queue and put
// and delete objects in the bucket. The SDK's AWS_ENDPOINT_URL_<SERVICE>
// variables point it elsewhere (the tests: local mode and moto).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/store/dynamo"
)

// The stack outputs smoke reads (template.yaml's Outputs).
const (
	outWebSocketURL = "WebSocketURL"
	outQueueURL     = "JobEventsQueueURL"
	outBucket       = "UploadBucketName"
	outUploadPrefix = "UploadPrefix"
	outTable        = "ConnectionsTableName"
)

func main() {
	ctx := context.Background()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "smoke:", err)
		os.Exit(1)
	}
}

// run parses args, runs every step, and returns an error if any failed.
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("smoke", flag.ContinueOnError)
	outputsFile := fs.String("outputs", "", "the stack's outputs as JSON: describe-stacks' Outputs list, or an object of name to value (required)")
	wait := fs.Duration("wait", 60*time.Second, "how long a step waits for its event")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *outputsFile == "" {
		return errors.New("-outputs is required: the stack's outputs, e.g. from aws cloudformation describe-stacks --query 'Stacks[0].Outputs'")
	}
	outputs, err := readOutputs(*outputsFile)
	if err != nil {
		return err
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load AWS configuration: %w", err)
	}
	s := &smoke{
		out:     out,
		outputs: outputs,
		wait:    *wait,
		store:   dynamo.New(dynamodb.NewFromConfig(cfg), outputs[outTable]),
		sqs:     sqs.NewFromConfig(cfg),
		s3:      s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = os.Getenv("AWS_ENDPOINT_URL_S3") != "" }),
	}
	return s.run(ctx)
}

// readOutputs reads a stack's outputs: the list describe-stacks and sam
// list stack-outputs print ({"OutputKey", "OutputValue"} each), or an object.
// It fails naming the outputs smoke needs that are missing.
func readOutputs(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	outputs := map[string]string{}
	var list []struct{ OutputKey, OutputValue string }
	if err := json.Unmarshal(data, &list); err != nil {
		if err := json.Unmarshal(data, &outputs); err != nil {
			return nil, fmt.Errorf("%s: neither a list of {OutputKey, OutputValue} nor an object of strings: %w", path, err)
		}
	}
	for _, o := range list {
		outputs[o.OutputKey] = o.OutputValue
	}
	var missing []string
	for _, k := range []string{outWebSocketURL, outQueueURL, outBucket, outUploadPrefix, outTable} {
		if outputs[k] == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s lacks the outputs %s", path, strings.Join(missing, ", "))
	}
	return outputs, nil
}

type smoke struct {
	out     io.Writer
	outputs map[string]string
	wait    time.Duration
	store   *dynamo.Store
	sqs     *sqs.Client
	s3      *s3.Client

	failed bool
}

// step runs one check, printing its result and duration. A failed step
// ends the run unless later steps can still say something.
func (s *smoke) step(name string, f func() (string, error)) bool {
	start := time.Now()
	detail, err := f()
	took := time.Since(start).Round(time.Millisecond)
	result := "ok  "
	if err != nil {
		result, detail, s.failed = "FAIL", err.Error(), true
	}
	fmt.Fprintf(s.out, "%s  %-34s %8v  %s\n", result, name, took, detail)
	return err == nil
}

func (s *smoke) run(ctx context.Context) error {
	suffix := randomHex(4)
	owner, jobID := "smoke-"+suffix, "smoke-job-"+suffix
	var key string
	var hash string
	if !s.step("create a throw-away key", func() (string, error) {
		var err error
		if key, err = auth.NewKey(); err != nil {
			return "", err
		}
		rec := auth.NewKeyRecord(key, owner, "smoke test (throw-away)", time.Now())
		hash = rec.Hash
		return "owner " + owner + ", hash " + auth.Prefix(hash), s.store.PutKey(ctx, rec)
	}) {
		return errors.New("a step failed")
	}
	revoked := false
	defer func() {
		if !revoked {
			s.step("revoke the key", func() (string, error) { return "", s.store.RevokeKey(ctx, hash) })
		}
	}()

	var live *client
	if !s.step("connect", func() (string, error) {
		var err error
		live, err = s.dial(ctx, "smoke-live", key)
		return s.outputs[outWebSocketURL], err
	}) {
		return errors.New("a step failed")
	}
	defer live.conn.CloseNow()

	s.step("ping", func() (string, error) {
		if err := live.send(ctx, `{"action":"ping"}`); err != nil {
			return "", err
		}
		_, err := live.await(ctx, s.wait, func(m message) bool { return m.Type == "pong" })
		return "pong", err
	})

	var ids []string
	s.step("job event through the queue", func() (string, error) {
		body := fmt.Sprintf(`{"ownerId":%q,"event":{"type":"job_progress","jobId":%q,"progress":50,"processedCount":1,"totalCount":2,"currentFile":"smoke.txt"}}`, owner, jobID)
		if _, err := s.sqs.SendMessage(ctx, &sqs.SendMessageInput{
			QueueUrl: aws.String(s.outputs[outQueueURL]), MessageBody: aws.String(body), MessageGroupId: aws.String(jobID),
		}); err != nil {
			return "", fmt.Errorf("send to the job events queue: %w", err)
		}
		m, err := live.await(ctx, s.wait, func(m message) bool { return m.Type == "job_progress" && m.JobID == jobID })
		ids = append(ids, m.ID)
		return "job_progress received, seq " + fmt.Sprint(m.Seq), err
	})

	objectKey := s.outputs[outUploadPrefix] + owner + "/smoke.txt"
	s.step("upload through the bucket", func() (string, error) {
		if _, err := s.s3.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(s.outputs[outBucket]), Key: aws.String(objectKey), Body: strings.NewReader("wsnotify smoke test\n"),
		}); err != nil {
			return "", fmt.Errorf("put s3://%s/%s: %w", s.outputs[outBucket], objectKey, err)
		}
		m, err := live.await(ctx, s.wait, func(m message) bool { return m.Type == "file_uploaded" && m.Name == "smoke.txt" })
		ids = append(ids, m.ID)
		return "file_uploaded received, seq " + fmt.Sprint(m.Seq), err
	})
	defer func() {
		s.step("delete the uploaded object", func() (string, error) {
			_, err := s.s3.DeleteObject(context.WithoutCancel(ctx), &s3.DeleteObjectInput{Bucket: aws.String(s.outputs[outBucket]), Key: aws.String(objectKey)})
			return objectKey, err
		})
	}()

	s.step("resume from the start", func() (string, error) {
		c, err := s.dial(ctx, "smoke-resume", key)
		if err != nil {
			return "", err
		}
		defer c.conn.CloseNow()
		if err := c.send(ctx, `{"action":"resume","since":0}`); err != nil {
			return "", err
		}
		// The replay comes packed in replay messages, then resumed.
		replayed := map[string]bool{}
		if _, err := c.await(ctx, s.wait, func(m message) bool {
			for _, e := range append(m.Events, m) {
				replayed[e.ID] = e.ID != ""
			}
			return m.Type == "resumed"
		}); err != nil {
			return "", err
		}
		for _, id := range ids {
			if !replayed[id] {
				return "", fmt.Errorf("event %q was not replayed before resumed", id)
			}
		}
		return fmt.Sprintf("%d events replayed", len(ids)), nil
	})

	_ = live.conn.Close(websocket.StatusNormalClosure, "smoke test done")
	revoked = s.step("revoke the key", func() (string, error) { return "", s.store.RevokeKey(ctx, hash) })
	s.step("connect with the revoked key", func() (string, error) {
		c, err := s.dial(ctx, "smoke-revoked", key)
		if err == nil {
			c.conn.CloseNow()
			return "", errors.New("connected: the revoked key was accepted")
		}
		var refused *refusedError
		if errors.As(err, &refused) && refused.status == http.StatusUnauthorized {
			return "refused with 401", nil
		}
		return "", fmt.Errorf("want a 401 refusal: %w", err)
	})
	if s.failed {
		return errors.New("a step failed")
	}
	return nil
}

// message is what smoke reads of a received message.
type message struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	Seq   int64  `json:"seq"`
	JobID string `json:"jobId"`
	Name  string `json:"name"`
	// Events are a replay message's events.
	Events []message `json:"events"`
}

type client struct{ conn *websocket.Conn }

// refusedError is a handshake the API refused with a status.
type refusedError struct {
	status int
	err    error
}

func (e *refusedError) Error() string { return fmt.Sprintf("refused with %d: %v", e.status, e.err) }

// dial connects clientID with token to the stack's WebSocket URL, as the
// stage URL takes them: in the query string.
func (s *smoke) dial(ctx context.Context, clientID, token string) (*client, error) {
	u, err := url.Parse(s.outputs[outWebSocketURL])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", outWebSocketURL, err)
	}
	q := u.Query()
	q.Set("client_id", clientID)
	q.Set("token", token)
	u.RawQuery = q.Encode()
	dctx, cancel := context.WithTimeout(ctx, s.wait)
	defer cancel()
	conn, resp, err := websocket.Dial(dctx, u.String(), nil)
	if err != nil {
		if resp != nil {
			return nil, &refusedError{status: resp.StatusCode, err: err}
		}
		return nil, err
	}
	conn.SetReadLimit(notify.MaxMessageBytes) // a replay message is up to the API's message limit
	return &client{conn: conn}, nil
}

func (c *client) send(ctx context.Context, msg string) error {
	return c.conn.Write(ctx, websocket.MessageText, []byte(msg))
}

// await reads messages until match holds of one, for at most wait.
func (c *client) await(ctx context.Context, wait time.Duration, match func(message) bool) (message, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		_, data, err := c.conn.Read(ctx)
		if err != nil {
			return message{}, fmt.Errorf("waiting for the event: %w", err)
		}
		var m message
		if err := json.Unmarshal(data, &m); err != nil {
			return message{}, fmt.Errorf("received %q: %w", data, err)
		}
		if match(m) {
			return m, nil
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
