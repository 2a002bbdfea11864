package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
)

// TestTheBannersLinesWorkAsPrinted follows the banner as a user would: it
// connects with the printed URL (the user's own key in place of the
// placeholder when they gave keys), runs the printed curl line through a
// shell, and sees the event arrive.
func TestTheBannersLinesWorkAsPrinted(t *testing.T) {
	tests := []struct {
		name string
		args []string
		key  string // replaces the banner's "<API key>"; "" when it prints the key
	}{
		{name: "with a generated key"},
		{name: "with the user's keys", args: []string{"--api-key", "wsn_banner_key=acct_banner", "--api-key", "wsn_banner_other=acct_zzz"},
			key: "wsn_banner_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runLocalMode(t, nil, tt.args...)
			waitLogged(t, r.stdout, "Store:")
			banner := r.stdout.String()

			connect := bannerLine(t, banner, "Connect:  ")
			if tt.key != "" {
				if !strings.HasSuffix(connect, "?token=<API key>") {
					t.Fatalf("Connect line %q has no key placeholder", connect)
				}
				connect = strings.Replace(connect, "<API key>", tt.key, 1)
			}
			ctx, cancel := context.WithTimeout(context.Background(), processWait)
			defer cancel()
			c, _, err := asyncapi.Dial(ctx, connect, nil)
			if err != nil {
				t.Fatalf("connect with the banner's URL: %v", err)
			}
			defer c.CloseNow()

			fire := "curl " + bannerLine(t, banner, "curl ")
			url, body := curlRequest(t, fire)
			resp, err := http.Post(url, "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(answer) != `{"batchItemFailures":[]}` {
				t.Fatalf("the fire line got %d %s", resp.StatusCode, answer)
			}
			_, data, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("no event after the fire line: %v", err)
			}
			var ev struct{ Type, JobID string }
			if json.Unmarshal(data, &ev) != nil || ev.Type != "job_progress" || ev.JobID != "job_123" {
				t.Fatalf("received %s", data)
			}
		})
	}
}

// bannerLine returns what follows prefix on the banner's first line holding it.
func bannerLine(t *testing.T, banner, prefix string) string {
	t.Helper()
	for _, line := range strings.Split(banner, "\n") {
		if _, rest, ok := strings.Cut(line, prefix); ok {
			return rest
		}
	}
	t.Fatalf("no line with %q in the banner:\n%s", prefix, banner)
	return ""
}

// curlRequest has a shell read a printed curl line, with curl standing in as
// a shell function that prints its arguments, so the quoting is the shell's
// own; it returns the line's URL and its -d body.
func curlRequest(t *testing.T, line string) (url, body string) {
	t.Helper()
	out, err := exec.Command("sh", "-c", `curl() { printf '%s\0' "$@"; }; `+line).Output()
	if err != nil {
		t.Fatalf("sh -c %q: %v", line, err)
	}
	args := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "-d" && i+1 < len(args):
			body = args[i+1]
			i++
		case strings.HasPrefix(args[i], "http://"):
			url = args[i]
		}
	}
	if url == "" || body == "" || !bytes.HasPrefix([]byte(body), []byte(`{"Records":`)) {
		t.Fatalf("curl line %q gave arguments %q", line, args)
	}
	return url, body
}
