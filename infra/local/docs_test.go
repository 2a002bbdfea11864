package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/testenv"
)

// docsNodeExample returns the Node.js example of docs/protocol.md: the
// first js code block after the line that introduces it.
func docsNodeExample(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "protocol.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "In Node.js, with the `ws` package")
	_, rest, ok2 := strings.Cut(rest, "```js\n")
	block, _, ok3 := strings.Cut(rest, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("docs/protocol.md lost its Node.js example")
	}
	return block
}

// TestTheProtocolDocsNodeExampleWorks runs docs/protocol.md's Node.js
// example as printed, but for the host, against local mode, and fires the
// four events at it.
func TestTheProtocolDocsNodeExampleWorks(t *testing.T) {
	const key, owner = "wsn_docs_example_key", "acct_docs"
	addr := startLocalMode(t, "--addr", "127.0.0.1:0", "--api-key", key+"="+owner)
	src := docsNodeExample(t)
	if !strings.Contains(src, "ws://127.0.0.1:8000/") {
		t.Fatal("the example no longer connects to ws://127.0.0.1:8000/")
	}
	script := filepath.Join(t.TempDir(), "example.js")
	if err := os.WriteFile(script, []byte(strings.Replace(src, "127.0.0.1:8000", addr, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := testenv.StartNode(t, []string{"NODE_PATH=" + testenv.NodeModules(t), "WSNOTIFY_TOKEN=" + key}, script)
	example := &seedClient{out: p.Lines, stdin: p.Stdin, stderr: p.Stderr, deadline: time.After(30 * time.Second)}
	waitFor := func(want string) {
		t.Helper()
		for !strings.Contains(example.next(t, want), want) {
		}
	}
	waitFor("connected")
	fireSeedEvents(t, addr, owner)
	for _, typ := range []string{"job_progress", "job_complete", "error", "file_uploaded"} {
		waitFor("type: '" + typ + "'")
	}
}
