package wsnotify

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
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
			path := filepath.Clean(filepath.Join(filepath.Dir(doc), target))
			if !exists[path] {
				t.Errorf("%s links to %s, which is not a file of the repository", doc, target)
				continue
			}
			if fragment := strings.TrimPrefix(m[2], "#"); fragment != "" && strings.HasSuffix(path, ".md") {
				if !headingAnchors(t, path)[fragment] {
					t.Errorf("%s links to %s#%s, and %s has no heading with that anchor", doc, target, fragment, path)
				}
			}
		}
		// A link to a heading of the same page.
		for _, m := range sameDocLink.FindAllStringSubmatch(string(text), -1) {
			if !headingAnchors(t, doc)[m[1]] {
				t.Errorf("%s links to #%s, and has no heading with that anchor", doc, m[1])
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

// sameDocLink matches a link to a heading of the same page, [text](#anchor).
var sameDocLink = regexp.MustCompile(`\]\(#([^)\s]+)\)`)

// headingAnchors returns the anchors of the markdown file's headings, as
// GitHub makes them: lower case, spaces to hyphens, punctuation dropped, and
// -1, -2, … after a repeated one. Headings inside code blocks do not count.
func headingAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	anchors, seen, fenced := map[string]bool{}, map[string]int{}, false
	for _, line := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		heading := strings.TrimLeft(line, "#")
		if fenced || heading == line || !strings.HasPrefix(heading, " ") {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		anchor := b.String()
		if n := seen[b.String()]; n > 0 {
			anchor = fmt.Sprintf("%s-%d", anchor, n)
		}
		seen[b.String()]++
		anchors[anchor] = true
	}
	return anchors
}

// TestTheReadmeLinksEveryDocument holds the README to being the way into
// every document of docs/.
func TestTheReadmeLinksEveryDocument(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	linked := map[string]bool{}
	for _, m := range markdownLink.FindAllStringSubmatch(string(readme), -1) {
		linked[filepath.Clean(m[1])] = true
	}
	docs, _ := filepath.Glob("docs/*")
	for _, doc := range docs {
		if ext := filepath.Ext(doc); (ext == ".md" || ext == ".yaml") && !linked[doc] {
			t.Errorf("README.md does not link %s", doc)
		}
	}
	if lines := strings.Count(string(readme), "\n"); lines > 300 {
		t.Errorf("README.md has %d lines: keep it to 300, a five-minute read, and move the rest into docs/", lines)
	}
}

// TestEveryExampleUsesOneHostName holds the README and the docs to one
// local address in every example, 127.0.0.1:8000, local mode's own: a
// reader who copies lines from two places gets the same host. (Local mode
// answers localhost too; infra/local's tests connect by that name.)
func TestEveryExampleUsesOneHostName(t *testing.T) {
	docs, _ := filepath.Glob("docs/*.md")
	for _, doc := range append([]string{"README.md", "clients/js/README.md"}, docs...) {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(text), "\n") {
			if strings.Contains(line, "localhost:8000") {
				t.Errorf("%s:%d uses localhost:8000; the examples use 127.0.0.1:8000: %s", doc, i+1, line)
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
