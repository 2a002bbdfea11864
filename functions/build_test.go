package functions_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wsnotify/wsnotify/shared/testenv"
)

// TestSamBuildTargetsMakeLinuxArm64Bootstraps runs the Makefile targets that
// `sam build` calls (BuildMethod: makefile, CodeUri: .), as SAM calls them,
// and checks each writes a static linux/arm64 executable named bootstrap
// into ARTIFACTS_DIR — what the provided.al2023 arm64 runtime starts.
func TestSamBuildTargetsMakeLinuxArm64Bootstraps(t *testing.T) {
	for id := range testenv.Functions {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			artifacts := t.TempDir()
			cmd := exec.Command("make", "--no-print-directory", "build-"+id, "ARTIFACTS_DIR="+artifacts)
			cmd.Dir = testenv.RepoRoot(t)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("make build-%s: %v\n%s", id, err, out)
			}
			f, err := elf.Open(filepath.Join(artifacts, "bootstrap"))
			if err != nil {
				t.Fatalf("bootstrap: %v", err)
			}
			defer f.Close()
			if f.Machine != elf.EM_AARCH64 || f.Type != elf.ET_EXEC {
				t.Fatalf("bootstrap is %v %v, want an AArch64 executable", f.Machine, f.Type)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Fatal("bootstrap is dynamically linked; CGO_ENABLED=0 should make it static")
				}
			}
		})
	}
}

// TestSamBuildsInTheSourceFolder: with CodeUri: . sam build would copy the
// repository (Node packages, tools and all) once per function before
// running its Makefile target; built in source it copies nothing. Both the
// project's sam settings and `make sam-build` ask for that.
func TestSamBuildsInTheSourceFolder(t *testing.T) {
	root := testenv.RepoRoot(t)
	config, err := os.ReadFile(filepath.Join(root, "samconfig.toml"))
	if err != nil {
		t.Fatal(err)
	}
	section := ""
	found := false
	for _, line := range strings.Split(string(config), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = line
		}
		if section == "[default.build.parameters]" && strings.ReplaceAll(line, " ", "") == "build_in_source=true" {
			found = true
		}
	}
	if !found {
		t.Errorf("samconfig.toml does not set build_in_source = true in [default.build.parameters]:\n%s", config)
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^sam-build:\n\tsam build --build-in-source$`).Match(makefile) {
		t.Error("the Makefile's sam-build target does not run sam build --build-in-source")
	}
}
