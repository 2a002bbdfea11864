package wsnotify

import (
	"io/fs"
	"os"
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
// no file of the repository names the material the project started from.
func TestTheDocsStandAlone(t *testing.T) {
	files := repositoryFiles(t)
	exists := map[string]bool{}
	for _, f := range files {
		for p := f; p != "."; p = filepath.Dir(p) {
			exists[p] = true
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
			if path := filepath.Clean(filepath.Join(filepath.Dir(doc), target)); !exists[path] {
				t.Errorf("%s links to %s, which is not a file of the repository", doc, target)
			}
		}
	}
	for _, f := range files {
		if f == "docs_test.go" {
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

// ignoredDirs are the folders .gitignore keeps out of the repository: tools,
// builds and test output, not the repository's own files.
var ignoredDirs = map[string]bool{".git": true, ".tools": true, "build": true, "node_modules": true, "test-output": true, "rapid": true}

// repositoryFiles returns the repository's files, as paths relative to its
// root, without what .gitignore leaves out.
func repositoryFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if ignoredDirs[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && !strings.HasSuffix(path, ".test") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
