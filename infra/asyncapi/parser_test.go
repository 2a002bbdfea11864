package asyncapi_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	wsnotify "github.com/wsnotify/wsnotify"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// diagnostic is one line of infra/node/asyncapi-check.js's output.
type diagnostic struct {
	Severity, Code, Message, Path string
	Line                          int
}

// runParser runs @asyncapi/parser (through infra/node/asyncapi-check.js) on
// the document at path, and returns its diagnostics and exit code.
func runParser(t *testing.T, path string) ([]diagnostic, int, string) {
	t.Helper()
	modules := testenv.NodeModules(t)
	if _, err := os.Stat(filepath.Join(modules, "@asyncapi", "parser", "package.json")); err != nil {
		t.Fatalf("@asyncapi/parser is not installed in %s: run `make test` (it runs `npm ci` in infra/node)", modules)
	}
	lines, stderr, code := testenv.RunNodeScript(t, "asyncapi-check.js", path)
	var diags []diagnostic
	for _, line := range lines {
		var d diagnostic
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatalf("asyncapi-check.js printed %q: %v", line, err)
		}
		diags = append(diags, d)
	}
	return diags, code, stderr
}

func TestTheDocumentPassesTheAsyncAPIParser(t *testing.T) {
	path := filepath.Join(testenv.RepoRoot(t), "docs", "asyncapi.yaml")
	diags, code, stderr := runParser(t, path)
	for _, d := range diags {
		t.Logf("%s:%d: %s %s (%s) at %s", path, d.Line, d.Severity, d.Message, d.Code, d.Path)
		if d.Severity == "Error" {
			t.Errorf("error diagnostic: %s at %s", d.Message, d.Path)
		}
	}
	if code != 0 {
		t.Fatalf("the parser refused docs/asyncapi.yaml (exit %d): %s", code, stderr)
	}
}

// TestTheParserCheckFailsOnABrokenDocument shows that the check above can
// fail: a copy of the document with one mistake is refused.
func TestTheParserCheckFailsOnABrokenDocument(t *testing.T) {
	mistakes := []struct{ name, from, to, code string }{
		{"a payload pointing nowhere", "#/components/schemas/Pong", "#/components/schemas/Missing", "invalid-ref"},
		{"an operation with an unknown action", "action: send", "action: publish", "asyncapi-document-resolved"},
	}
	for _, m := range mistakes {
		t.Run(m.name, func(t *testing.T) {
			if !bytes.Contains(wsnotify.AsyncAPI, []byte(m.from)) {
				t.Fatalf("the document no longer contains %q: pick another mistake", m.from)
			}
			path := filepath.Join(t.TempDir(), "asyncapi.yaml")
			if err := os.WriteFile(path, bytes.Replace(wsnotify.AsyncAPI, []byte(m.from), []byte(m.to), 1), 0o644); err != nil {
				t.Fatal(err)
			}
			diags, code, _ := runParser(t, path)
			found := false
			for _, d := range diags {
				found = found || d.Severity == "Error" && d.Code == m.code
			}
			if code != 1 || !found {
				t.Fatalf("exit %d, diagnostics %+v; want exit 1 and an error %s", code, diags, m.code)
			}
		})
	}
}
