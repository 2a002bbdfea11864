package gendoc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testMarkers = Markers{Begin: "<!-- x:begin -->", End: "<!-- x:end -->"}

func TestRewriteReplacesOnlyTheGeneratedPart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "doc.md")
	before := "# x\n\nintro\n" + testMarkers.Begin + "\nold table\n" + testMarkers.End + "\n\nafter\n"
	if err := os.WriteFile(path, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := testMarkers.Rewrite(path, "| new |\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := "# x\n\nintro\n" + testMarkers.Begin + "\n| new |\n" + testMarkers.End + "\n\nafter\n"; string(got) != want {
		t.Errorf("rewritten:\n%s\nwant:\n%s", got, want)
	}
	if gen, err := testMarkers.Generated(path); err != nil || gen != "| new |\n" {
		t.Errorf("Generated = %q, %v; want the new table", gen, err)
	}
}

func TestADocumentWithoutMarkersIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "doc.md")
	if err := os.WriteFile(path, []byte("# x\n\n"+testMarkers.End+"\n"+testMarkers.Begin+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, filepath.Join(t.TempDir(), "none.md")} {
		if err := testMarkers.Rewrite(p, ""); err == nil {
			t.Errorf("Rewrite(%s) succeeded, want an error", p)
		}
	}
	if _, _, _, err := testMarkers.Section(path); err == nil || !strings.Contains(err.Error(), testMarkers.Begin) {
		t.Errorf("err = %v, want one naming the markers", err)
	}
}

func TestCPUNamesTheProcessor(t *testing.T) {
	if CPU() == "" {
		t.Error("CPU() is empty")
	}
}
