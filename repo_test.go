package wsnotify

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// maxTrackedSize is the largest file the repository may hold, images aside:
// anything bigger is build output or data that belongs elsewhere.
const maxTrackedSize = 1 << 20

// executableMagic are the first bytes of the executable formats a build
// can leave: ELF, Mach-O (both byte orders, 32 and 64 bits, universal) and
// WebAssembly. Windows programs are told by isPE.
var executableMagic = [][]byte{
	[]byte("\x7fELF"),
	{0xfe, 0xed, 0xfa, 0xce}, {0xce, 0xfa, 0xed, 0xfe},
	{0xfe, 0xed, 0xfa, 0xcf}, {0xcf, 0xfa, 0xed, 0xfe},
	{0xca, 0xfe, 0xba, 0xbe},
	[]byte("\x00asm"),
}

// isPE reports whether b is a Windows program: "MZ", and at the offset
// stored at 0x3c the PE signature.
func isPE(b []byte) bool {
	if len(b) < 0x40 || !bytes.HasPrefix(b, []byte("MZ")) {
		return false
	}
	off := int(binary.LittleEndian.Uint32(b[0x3c:]))
	return off >= 0x40 && off+4 <= len(b) && bytes.Equal(b[off:off+4], []byte("PE\x00\x00"))
}

// TestTheRepositoryHoldsNoBuildOutput fails on a tracked file over 1 MB
// that is not an image, and on a tracked executable: a program (by its
// first bytes), or a file with the executable bit that is not a script.
// Whoever clones pays for every such file, and it goes stale at the next
// commit; builds belong under the git-ignored build/.
func TestTheRepositoryHoldsNoBuildOutput(t *testing.T) {
	for _, f := range trackedFiles(t) {
		if problem := buildOutput(f); problem != "" {
			t.Errorf("%s is tracked: %s; remove it (git rm --cached) and have .gitignore keep it out", f.path, problem)
		}
	}
}

// trackedFile is a file of git's index with its content.
type trackedFile struct {
	path       string
	executable bool // mode 100755
	content    []byte
}

// buildOutput says why f does not belong in the repository, or "".
func buildOutput(f trackedFile) string {
	for _, magic := range executableMagic {
		if bytes.HasPrefix(f.content, magic) {
			return "it is a compiled program"
		}
	}
	if isPE(f.content) {
		return "it is a compiled program"
	}
	if f.executable && !bytes.HasPrefix(f.content, []byte("#!")) {
		return "it has the executable bit but is no script (no #! line)"
	}
	if len(f.content) > maxTrackedSize && !strings.HasPrefix(http.DetectContentType(f.content), "image/") {
		return fmt.Sprintf("it is %.1f MB, over the 1 MB a file other than an image may have", float64(len(f.content))/1e6)
	}
	return ""
}

// trackedFiles returns the files git tracks, as the index holds them.
func trackedFiles(t *testing.T) []trackedFile {
	t.Helper()
	out, err := exec.Command("git", "ls-files", "-s", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v: the test reads the index of the repository's git clone; install git (see README, Set-up)", err)
	}
	var files []trackedFile
	for _, entry := range strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		// "<mode> <object> <stage>\t<path>"
		info, path, ok := strings.Cut(entry, "\t")
		if !ok {
			t.Fatalf("git ls-files gave %q", entry)
		}
		mode := strings.Fields(info)[0]
		if mode == "120000" || mode == "160000" { // a symbolic link, a submodule
			continue
		}
		content, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			continue // deleted in the work tree, not yet in the index
		}
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, trackedFile{path: path, executable: mode == "100755", content: content})
	}
	if len(files) == 0 {
		t.Fatal("git ls-files lists no file")
	}
	return files
}

// TestBuildOutputIsRecognized holds buildOutput to what it is for: each
// kind of build output is caught, and the repository's own kinds of file
// pass.
func TestBuildOutputIsRecognized(t *testing.T) {
	big := bytes.Repeat([]byte("a line of text\n"), maxTrackedSize/15+1)
	png := append([]byte("\x89PNG\r\n\x1a\n"), big...)
	windows := make([]byte, 0x80)
	copy(windows, "MZ")
	windows[0x3c] = 0x40
	copy(windows[0x40:], "PE\x00\x00")
	elf := append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 100)...)
	tests := []struct {
		name string
		file trackedFile
		bad  bool
	}{
		{"an ELF program", trackedFile{path: "local", content: elf}, true},
		{"an ELF program without the executable bit", trackedFile{path: "x", content: elf}, true},
		{"a Mach-O program", trackedFile{path: "x", content: append([]byte{0xcf, 0xfa, 0xed, 0xfe}, make([]byte, 100)...)}, true},
		{"a Windows program", trackedFile{path: "x.exe", content: windows}, true},
		{"an executable that is no script", trackedFile{path: "x", executable: true, content: []byte("data")}, true},
		{"a text file over 1 MB", trackedFile{path: "big.json", content: big}, true},
		{"a script", trackedFile{path: "run.sh", executable: true, content: []byte("#!/usr/bin/env bash\necho hi\n")}, false},
		{"an image over 1 MB", trackedFile{path: "docs/demo.png", content: png}, false},
		{"a text starting with MZ", trackedFile{path: "x.txt", content: bytes.Repeat([]byte("MZ is not a program. "), 10)}, false},
		{"a Go file", trackedFile{path: "x.go", content: []byte("package x\n")}, false},
	}
	for _, tt := range tests {
		if got := buildOutput(tt.file) != ""; got != tt.bad {
			t.Errorf("%s: reported %v, want %v", tt.name, got, tt.bad)
		}
	}
}

// TestGitIgnoresWhatGoBuildLeaves holds .gitignore to keeping out the
// program `go build` leaves for each command of the module, whether run at
// the repository's root (go build ./infra/local leaves ./local) or in the
// command's folder.
func TestGitIgnoresWhatGoBuildLeaves(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{if eq .Name "main"}}{{.Dir}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(dir)
		paths = append(paths, name, filepath.Join(rel, name), name+".exe")
	}
	if len(paths) < 3*5 {
		t.Fatalf("go list found only %d commands", len(paths)/3)
	}
	for _, p := range paths {
		// check-ignore exits 1 for a path no rule ignores.
		if err := exec.Command("git", "check-ignore", "-q", "--no-index", p).Run(); err != nil {
			t.Errorf("git does not ignore %s, which go build can leave: add it to .gitignore", p)
		}
	}
}
