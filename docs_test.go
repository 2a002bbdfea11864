package wsnotify

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// markdownLink matches an inline link or image, [text](target), and keeps
// the target without any #fragment.
var markdownLink = regexp.MustCompile(`\]\(([^)#\s]*)(#[^)\s]*)?\)`)

// outsideNames are names of material beside the repository, which a reader
// of a clone does not have.
var outsideNames = []string{"../shared", "DESIGN.md", "STYLE.md", "websocket-api.txt", "seed API page"}

// TestTheDocsStandAlone holds the README and docs/ to pointing only inside
// the repository: every relative link names a file of the repository, and
// no tracked file names the material the project started from.
func TestTheDocsStandAlone(t *testing.T) {
	out, err := exec.Command("git", "ls-files").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	tracked := map[string]bool{}
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		tracked[f] = true
		for dir := filepath.Dir(f); dir != "."; dir = filepath.Dir(dir) {
			tracked[dir] = true
		}
	}
	docs, _ := filepath.Glob("docs/*.md")
	for _, doc := range append([]string{"README.md"}, docs...) {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range markdownLink.FindAllStringSubmatch(string(text), -1) {
			target := m[1]
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue // a fragment of the same page, or an absolute URL
			}
			if path := filepath.Clean(filepath.Join(filepath.Dir(doc), target)); !tracked[filepath.ToSlash(path)] {
				t.Errorf("%s links to %s, which is not a file of the repository", doc, target)
			}
		}
	}
	for f := range tracked {
		if strings.HasPrefix(f, "infra/node/node_modules/") || f == "docs_test.go" {
			continue
		}
		info, err := os.Stat(f)
		if err != nil || info.IsDir() {
			continue
		}
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range outsideNames {
			if strings.Contains(string(text), name) {
				t.Errorf("%s names %q, which lies outside the repository", f, name)
			}
		}
	}
}
