package functions_test

import (
	"os"
	"testing"

	"github.com/wsnotify/wsnotify/shared/testenv"
)

// TestMain builds each Lambda bootstrap once for all the package's tests.
func TestMain(m *testing.M) {
	remove := testenv.CacheBootstraps()
	code := m.Run()
	remove()
	os.Exit(code)
}
