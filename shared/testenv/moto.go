package testenv

import (
	"fmt"
	"os/exec"
	"testing"
)

// Moto starts a fresh moto server (AWS services emulated in Python: IAM,
// DynamoDB, SQS, Secrets Manager, ...) on a free loopback port and returns
// its endpoint URL. It is stopped when the test ends. moto enforces IAM only
// once told to (its /moto-api/reset-auth, or INITIAL_NO_AUTH_ACTION_COUNT):
// until then every request is allowed, which is how a test sets it up.
func Moto(t testing.TB) string {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("testenv: python3 is not on PATH: install Python 3 with moto 5 (`pip install 'moto[server]'`)")
	}
	if out, err := exec.Command(python, "-c", "import moto.server, flask").CombinedOutput(); err != nil {
		t.Fatalf("testenv: moto's server is not installed for %s: install it with `pip install 'moto[server]'` (%v)\n%s", python, err, out)
	}
	var endpoint string
	startServer(t, "moto", 1, func(ports []int) (*exec.Cmd, string) {
		endpoint = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		return exec.Command(python, "-m", "moto.server", "-H", "127.0.0.1", "-p", fmt.Sprint(ports[0])), endpoint + "/moto-api/data.json"
	}, answered2xx)
	return endpoint
}
