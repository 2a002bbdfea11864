package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/shared/testenv"
)

// seedNodeExample is the Node.js example of the seed's API page
// (websocket-api.txt), verbatim. infra/node/seed-client.js must contain it
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
	_, rest, ok := strings.Cut(string(src), "// ---- seed code (verbatim but for host and token) ----\n")
	block, _, ok2 := strings.Cut(rest, "// ---- end of seed code ----")
	if !ok || !ok2 {
		t.Fatal("seed-client.js lost its seed code markers")
	}
	block = strings.Replace(block, "process.env.WSNOTIFY_TOKEN", "'YOUR_API_KEY'", 1)
	block = strings.Replace(block, "ws://${host}/", "ws://localhost:8000/", 1)
	if block != seedNodeExample {
		t.Fatalf("the seed's code changed in seed-client.js:\n%s\nwant:\n%s", block, seedNodeExample)
	}
}

func TestTheSeedsNodeClientReceivesEveryEventType(t *testing.T) {
	node := testenv.Node(t)
	modules := testenv.NodeModules(t)
	const key, owner = "wsn_node_test_key", "acct_node"

	// Local mode as `go run ./infra/local` starts it, on a free port.
	ctx, cancel := context.WithCancel(context.Background())
	banner, bannerW := io.Pipe()
	done := make(chan error, 1)
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--api-key", key + "=" + owner}, noEnv, bannerW, log)
		bannerW.Close()
	}()
	lines := testenv.Lines(banner)
	t.Cleanup(func() {
		cancel()
		for range lines { // let the reader finish
		}
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	addr := ""
	select {
	case line := <-lines:
		addr = strings.TrimPrefix(line, "wsnotify local mode on http://")
	case err := <-done:
		t.Fatalf("local mode stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("local mode did not start")
	}

	cmd := exec.Command(node, seedClientPath(t))
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "WSNOTIFY_HOST="+addr, "WSNOTIFY_TOKEN="+key)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	out := testenv.Lines(stdout)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		for range out { // read to EOF before Wait closes the pipe
		}
		_ = cmd.Wait()
	})
	deadline := time.After(20 * time.Second)
	next := func(what string) string {
		t.Helper()
		select {
		case line, ok := <-out:
			if !ok {
				t.Fatalf("node exited while waiting for %s: %s", what, stderr.String())
			}
			return line
		case <-deadline:
			t.Fatalf("timed out waiting for %s; node stderr: %s", what, stderr.String())
		}
		return ""
	}
	for next(`"Connected"`) != "Connected" {
	}

	// job_progress, job_complete and error through the job events function
	// (one SQS batch), file_uploaded through the upload function.
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
	invoke(t, addr, "S3UploadFunction", []byte(`{"Records":[{"eventName":"ObjectCreated:Put",
		"s3":{"bucket":{"name":"uploads"},"object":{"key":"uploads/acct_node/newfile.pdf","size":512000,"eTag":"e","sequencer":"01"}}}]}`),
		&uploads)
	if uploads.Published != 1 {
		t.Fatalf("uploads published: %d", uploads.Published)
	}

	for _, typ := range []string{"job_progress", "job_complete", "error", "file_uploaded"} {
		line := next(typ)
		for !strings.HasPrefix(line, "EVENT ") {
			line = next(typ) // the seed's own multi-line console.log output
		}
		var got, want map[string]any
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "EVENT ")), &got); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
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

// invoke calls the Invoke API and decodes the function's answer into out.
func invoke(t *testing.T, addr, function string, payload []byte, out any) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/2015-03-31/functions/"+function+"/invocations", "application/json", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Function-Error") != "" {
		t.Fatalf("%s: %d %s", function, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("%s answered %s: %v", function, body, err)
	}
}

func noEnv(string) (string, bool) { return "", false }
