package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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

// TestTheProtocolDocsShowTheOneNodeExample holds docs/protocol.md's Node.js
// example to the contract's, which infra/node/seed-client.js runs (and
// TestSeedClientRunsTheSeedsNodeExampleUnchanged checks), on the docs' one
// host name: there is one Node.js example, and it is the one the tests run.
func TestTheProtocolDocsShowTheOneNodeExample(t *testing.T) {
	want := strings.Replace(seedNodeExample, "ws://localhost:8000/", "ws://127.0.0.1:8000/", 1)
	if got := docsNodeExample(t); got != want {
		t.Fatalf("docs/protocol.md's Node.js example:\n%s\nis not the contract's, which seed-client.js runs:\n%s", got, want)
	}
}
