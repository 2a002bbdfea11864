package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// seedNodeExample is the client contract's original Node.js example,
// verbatim. infra/node/seed-client.js must contain it
// unchanged but for the host and the token.
const seedNodeExample = `const WebSocket = require('ws');
const { randomUUID } = require('crypto');

const clientId = randomUUID();
const token = 'YOUR_API_KEY';

const ws = new WebSocket(
  ` + "`ws://localhost:8000/api/v1/ws/${clientId}?token=${token}`" + `
);

ws.on('open', () => {
  console.log('Connected');
});

ws.on('message', (data) => {
  const event = JSON.parse(data);
  console.log('Received:', event);
});
`

// The seed's example events, verbatim.
var seedEvents = map[string]string{
	"job_progress":  `{"type":"job_progress","jobId":"job_123","progress":65,"processedCount":65,"totalCount":100,"currentFile":"document.pdf"}`,
	"job_complete":  `{"type":"job_complete","jobId":"job_123","status":"completed","organized":100,"failed":0}`,
	"error":         `{"type":"error","jobId":"job_123","error":"Permission denied","code":"PERMISSION_ERROR"}`,
	"file_uploaded": `{"type":"file_uploaded","fileId":"file_456","name":"newfile.pdf","size":512000}`,
}

func seedClientPath(t *testing.T) string {
	return filepath.Join(testenv.RepoRoot(t), "infra", "node", "seed-client.js")
}

func TestSeedClientRunsTheSeedsNodeExampleUnchanged(t *testing.T) {
	src, err := os.ReadFile(seedClientPath(t))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(src), "// ---- seed code (verbatim but for client id, token, scheme and host) ----\n")
	block, _, ok2 := strings.Cut(rest, "// ---- end of seed code ----")
	if !ok || !ok2 {
		t.Fatal("seed-client.js lost its seed code markers")
	}
	for _, sub := range []struct{ ours, seeds string }{
		{"given.pathname.split('/').pop()", "randomUUID()"},
		{"given.searchParams.get('token')", "'YOUR_API_KEY'"},
		{"${given.protocol}//${given.host}/", "ws://localhost:8000/"},
	} {
		block = strings.Replace(block, sub.ours, sub.seeds, 1)
	}
	if block != seedNodeExample {
		t.Fatalf("the seed's code changed in seed-client.js:\n%s\nwant:\n%s", block, seedNodeExample)
	}
}

func TestTheSeedsNodeClientReceivesEveryEventType(t *testing.T) {
	const key, owner = "wsn_node_test_key", "acct_node"
	for _, setup := range storeSetups {
		t.Run("on "+setup.name, func(t *testing.T) {
			t.Parallel()
			// Local mode as `go run ./infra/local` starts it, on a free port.
			addr := startLocalMode(t, append([]string{"--addr", "127.0.0.1:0", "--api-key", key + "=" + owner}, setup.args(t)...)...)
			client := startSeedClient(t, addr, key)
			fireSeedEvents(t, addr, owner)
			client.expectSeedEvents(t)
		})
	}
}

// storeSetup is a store local mode runs on, chosen by its flags.
type storeSetup struct {
	name string
	args func(t *testing.T) []string
}

// storeSetups are the stores the end-to-end tests run local mode on.
var storeSetups = []storeSetup{
	{"the embedded store", func(*testing.T) []string { return nil }},
	{"the DynamoDB store on dynalite, its table created by --create-table", func(t *testing.T) []string {
		return []string{"--dynamodb-endpoint", testenv.Dynalite(t), "--table", "wsnotify-local", "--create-table"}
	}},
}

// seedClient is the seed's Node client (infra/node/seed-client.js)
// connected to local mode.
type seedClient struct {
	out      <-chan string
	stdin    io.WriteCloser
	stderr   *testenv.SyncBuffer
	deadline <-chan time.Time
}

// startSeedClient runs the seed's Node client against local mode at addr
// with key, and returns once it has connected. Its stdin lines are sent as
// messages (send), and closing stdin closes the connection (close).
func startSeedClient(t *testing.T, addr, key string) *seedClient {
	t.Helper()
	// The seed's host is localhost, our examples' 127.0.0.1: local mode,
	// listening on 127.0.0.1, must answer both.
	host := strings.Replace(addr, "127.0.0.1:", "localhost:", 1)
	if host == addr {
		t.Fatalf("local mode listens on %s, not on 127.0.0.1", addr)
	}
	p := testenv.StartNode(t, []string{"NODE_PATH=" + testenv.NodeModules(t), "WSNOTIFY_SEND_STDIN=1"},
		seedClientPath(t), "ws://"+host+"/api/v1/ws/"+newUUID()+"?token="+key)
	c := &seedClient{out: p.Lines, stdin: p.Stdin, stderr: p.Stderr, deadline: time.After(30 * time.Second)}
	for c.next(t, `"Connected"`) != "Connected" {
	}
	return c
}

// next returns the client's next line of output.
func (c *seedClient) next(t *testing.T, what string) string {
	t.Helper()
	select {
	case line, ok := <-c.out:
		if !ok {
			t.Fatalf("node exited while waiting for %s: %s", what, c.stderr)
		}
		return line
	case <-c.deadline:
		t.Fatalf("timed out waiting for %s; node stderr: %s", what, c.stderr)
	}
	return ""
}

// event returns the next event the client received, skipping the seed's
// own multi-line console.log output. Each one is held to docs/asyncapi.yaml.
func (c *seedClient) event(t *testing.T, what string) map[string]any {
	t.Helper()
	line := c.next(t, what)
	for !strings.HasPrefix(line, "EVENT ") {
		line = c.next(t, what)
	}
	data := []byte(strings.TrimPrefix(line, "EVENT "))
	if err := asyncapi.CheckReceived(data); err != nil {
		t.Fatalf("the Node client received: %v", err)
	}
	var ev map[string]any
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	return ev
}

// send makes the client send msg as one message.
func (c *seedClient) send(t *testing.T, msg string) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, msg+"\n"); err != nil {
		t.Fatalf("write to node: %v", err)
	}
}

// close makes the client close the connection normally and waits until it has.
func (c *seedClient) close(t *testing.T) {
	t.Helper()
	if err := c.stdin.Close(); err != nil {
		t.Fatal(err)
	}
	for line := c.next(t, "CLOSED"); !strings.HasPrefix(line, "CLOSED "); line = c.next(t, "CLOSED") {
	}
}

// expectSeedEvents checks that the client receives the seed's four example
// events, in fireSeedEvents' order, with every field of the seed's shape.
func (c *seedClient) expectSeedEvents(t *testing.T) {
	t.Helper()
	for _, typ := range []string{"job_progress", "job_complete", "error", "file_uploaded"} {
		got := c.event(t, typ)
		var want map[string]any
		_ = json.Unmarshal([]byte(seedEvents[typ]), &want)
		for field, v := range want {
			if field == "fileId" {
				v = got[field] // derived from the upload; any id
			}
			if g, ok := got[field]; !ok || fmt.Sprint(g) != fmt.Sprint(v) {
				t.Errorf("%s: field %s = %v, want %v (event %v)", typ, field, g, v, got)
			}
		}
	}
}

// fireSeedEvents publishes the seed's example events to owner through local
// mode's Invoke API: job_progress, job_complete and error through the job
// events function (one SQS batch), file_uploaded through the upload function.
func fireSeedEvents(t *testing.T, addr, owner string) {
	t.Helper()
	var sqs events.SQSEvent
	for i, typ := range []string{"job_progress", "job_complete", "error"} {
		sqs.Records = append(sqs.Records, events.SQSMessage{
			MessageId: fmt.Sprint(i + 1),
			Body:      fmt.Sprintf(`{"ownerId":%q,"event":%s}`, owner, seedEvents[typ]),
		})
	}
	payload, _ := json.Marshal(sqs)
	var jobs events.SQSEventResponse
	invoke(t, addr, "JobEventsFunction", payload, &jobs)
	if len(jobs.BatchItemFailures) > 0 {
		t.Fatalf("job events failed: %+v", jobs.BatchItemFailures)
	}
	var uploads struct {
		Published int `json:"published"`
	}
	invoke(t, addr, "S3UploadFunction", []byte(fmt.Sprintf(`{"Records":[{"eventName":"ObjectCreated:Put",
		"s3":{"bucket":{"name":"uploads"},"object":{"key":"uploads/%s/newfile.pdf","size":512000,"eTag":"e","sequencer":"01"}}}]}`, owner)),
		&uploads)
	if uploads.Published != 1 {
		t.Fatalf("uploads published: %d", uploads.Published)
	}
}

// invoke calls the Invoke API and decodes the function's answer into out.
func invoke(t *testing.T, addr, function string, payload []byte, out any) {
	t.Helper()
	if err := tryInvoke(addr, function, payload, out); err != nil {
		t.Fatal(err)
	}
}

// tryInvoke is invoke returning its failure, for goroutines other than the
// test's.
func tryInvoke(addr, function string, payload []byte, out any) error {
	resp, err := http.Post("http://"+addr+"/2015-03-31/functions/"+function+"/invocations", "application/json", bytes.NewReader(payload))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Function-Error") != "" {
		return fmt.Errorf("%s: %d %s", function, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s answered %s: %w", function, body, err)
	}
	return nil
}
