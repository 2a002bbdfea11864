package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
)

// Programs the tests run are built once into build/test/<GOOS>_<GOARCH>/ of
// the repository (git-ignored), and shared: by the tests of one process,
// by the packages go test runs side by side, and by the next run. `go build
// -o` leaves a program that is up to date with its sources as it is, so a
// warm run links nothing (a link is seconds of CPU per program), while a
// change to any source they depend on rebuilds it.

// built memoizes Program within the test process: path → *builtProgram.
var built sync.Map

type builtProgram struct {
	once sync.Once
	err  error
}

// Program builds the command of package pkg (as "./infra/local") with the
// go build flags given into build/test/<GOOS>_<GOARCH>/<out>, once per test
// process, and returns its path. env is added to the build's environment
// (as "CGO_ENABLED=0"). Test processes that build the same path at the same
// time take turns through a lock file beside it.
func Program(t testing.TB, pkg, out string, env []string, flags ...string) string {
	t.Helper()
	root := RepoRoot(t)
	path := filepath.Join(root, "build", "test", runtime.GOOS+"_"+runtime.GOARCH, out)
	v, _ := built.LoadOrStore(path, &builtProgram{})
	b := v.(*builtProgram)
	b.once.Do(func() { b.err = buildLocked(root, path, pkg, env, flags) })
	if b.err != nil {
		t.Fatalf("testenv: %v", b.err)
	}
	return path
}

// buildLocked runs go build into path while holding path's lock file.
func buildLocked(root, path, pkg string, env, flags []string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close() // releases the lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	args := append(append([]string{"build"}, flags...), "-o", path, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %v: %v\n%s", args, err, out)
	}
	return nil
}

// LocalMode returns local mode's command built for this machine, as
// `go build ./infra/local` builds it.
func LocalMode(t testing.TB) string {
	t.Helper()
	return Program(t, "./infra/local", "local", nil)
}

// Bootstrap returns ./functions/<name> built for this machine as the
// Makefile builds it for Lambda (static, lambda.norpc, trimmed paths).
func Bootstrap(t testing.TB, name string) string {
	t.Helper()
	return Program(t, "./functions/"+name, filepath.Join("bootstraps", name, "bootstrap"), []string{"CGO_ENABLED=0"},
		"-trimpath", "-tags", "lambda.norpc")
}
