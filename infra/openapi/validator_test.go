package openapi_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	wsnotify "github.com/wsnotify/wsnotify"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// runValidator runs @readme/openapi-parser (through
// infra/node/openapi-check.js) on the document at path; it returns the
// messages it printed and its exit code.
func runValidator(t *testing.T, path string) ([]string, int) {
	t.Helper()
	modules := testenv.NodeModules(t)
	if _, err := os.Stat(filepath.Join(modules, "@readme", "openapi-parser", "package.json")); err != nil {
		t.Fatalf("@readme/openapi-parser is not installed in %s: run `make test` (it runs `npm ci` in infra/node)", modules)
	}
	lines, stderr, code := testenv.RunNodeScript(t, "openapi-check.js", path)
	var msgs []string
	for _, line := range lines {
		var m struct{ Severity, Message string }
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("openapi-check.js printed %q: %v", line, err)
		}
		msgs = append(msgs, m.Severity+": "+m.Message)
	}
	if code != 0 && len(msgs) == 0 {
		msgs = append(msgs, "stderr: "+stderr)
	}
	return msgs, code
}

func TestTheDocumentPassesAnOpenAPIValidator(t *testing.T) {
	path := filepath.Join(testenv.RepoRoot(t), "docs", "openapi.yaml")
	msgs, code := runValidator(t, path)
	for _, m := range msgs {
		t.Errorf("%s: %s", path, m) // warnings too: the document is ours to keep clean
	}
	if code != 0 {
		t.Fatalf("the validator refused docs/openapi.yaml (exit %d)", code)
	}
}

// TestTheValidatorFailsOnABrokenDocument shows that the check above can
// fail: copies of the document with one mistake each are refused.
func TestTheValidatorFailsOnABrokenDocument(t *testing.T) {
	for _, m := range []struct{ name, from, to, want string }{
		{"a schema pointing nowhere", "#/components/schemas/Presence", "#/components/schemas/Missing", "Missing"},
		{"an unknown member of an operation", "operationId: connections", "operationId: connections\n      summery: typo", "summery"},
		{"a path parameter that is not declared", "/v1/owners/{ownerId}/connections:", "/v1/owners/{owner}/connections:", "owner"},
	} {
		t.Run(m.name, func(t *testing.T) {
			if !bytes.Contains(wsnotify.OpenAPI, []byte(m.from)) {
				t.Fatalf("the document no longer contains %q: pick another mistake", m.from)
			}
			path := filepath.Join(t.TempDir(), "openapi.yaml")
			if err := os.WriteFile(path, bytes.Replace(wsnotify.OpenAPI, []byte(m.from), []byte(m.to), 1), 0o644); err != nil {
				t.Fatal(err)
			}
			msgs, code := runValidator(t, path)
			if code != 1 || !strings.Contains(strings.Join(msgs, "\n"), m.want) {
				t.Fatalf("exit %d, messages %q; want exit 1 and a message naming %q", code, msgs, m.want)
			}
		})
	}
}
