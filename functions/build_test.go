package functions_test

import (
	"debug/elf"
	"os/exec"
	"path/filepath"
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
