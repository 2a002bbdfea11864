package functions_test

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/wsnotify/wsnotify/shared/app"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// TestEachMainLoadsTheConfigurationOfItsFunction runs every main with an
// environment holding only a bad LOG_LEVEL, which every function reads. Each
// must stop at init with exactly the error shared/app gives for its own
// function: that ties functions/<dir> to its row of app's table, the table
// the template checks compare template.yaml with.
func TestEachMainLoadsTheConfigurationOfItsFunction(t *testing.T) {
	env := map[string]string{app.EnvLogLevel: "loud"}
	for id, name := range testenv.Functions {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			_, want := app.FromEnv(app.Function(id), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if want == nil {
				t.Fatalf("app.FromEnv(%s) accepted LOG_LEVEL=loud", id)
			}
			cmd := exec.Command(testenv.Bootstrap(t, name))
			cmd.Env = []string{app.EnvLogLevel + "=loud"}
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("functions/%s: %v, want exit status 1\n%s", name, err, out)
			}
			if got := strings.TrimSpace(string(out)); got != want.Error() {
				t.Errorf("functions/%s said\n\t%s\nwant\n\t%s", name, got, want)
			}
		})
	}
}
