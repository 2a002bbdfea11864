package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/infra/openapi"
	"github.com/wsnotify/wsnotify/shared/testenv"
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

			// Each run of the fire line is a new event: a new id, the next seq.
			fire := "curl " + bannerLine(t, banner, "curl ")
			var last struct {
				ID  string
				Seq int
			}
			for i := range 2 {
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
				var ev struct {
					Type, JobID, ID string
					Seq             int
				}
				if json.Unmarshal(data, &ev) != nil || ev.Type != "job_progress" || ev.JobID != "job_123" {
					t.Fatalf("received %s", data)
				}
				if i > 0 && (ev.ID == last.ID || ev.Seq <= last.Seq) {
					t.Fatalf("the fire line run again delivered id %s seq %d after id %s seq %d: a redelivery, not a new event",
						ev.ID, ev.Seq, last.ID, last.Seq)
				}
				last.ID, last.Seq = ev.ID, ev.Seq
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

// shellArgs has a shell run a printed line, with command standing in as a
// shell function that prints its arguments, so the quoting and expansions
// are the shell's own; it returns the arguments command would get.
func shellArgs(t *testing.T, command, line string) []string {
	t.Helper()
	out, err := exec.Command("sh", "-c", command+`() { printf '%s\0' "$@"; }; `+line).Output()
	if err != nil {
		t.Fatalf("sh -c %q: %v", line, err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
}

// curlRequest has a shell read a printed curl line (shellArgs); it returns
// the line's URL and its -d body.
func curlRequest(t *testing.T, line string) (url, body string) {
	t.Helper()
	args := shellArgs(t, "curl", line)
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

// TestTheSamplesReachAPlainMakeRunsClient follows the README under a plain
// `make run`: a client connected with the banner's URL receives what the
// sample events in events/ publish, since the generated key's owner is the
// samples' owner.
func TestTheSamplesReachAPlainMakeRunsClient(t *testing.T) {
	r := runLocalMode(t, nil)
	waitLogged(t, r.stdout, "Store:")
	ctx, cancel := context.WithTimeout(context.Background(), processWait)
	defer cancel()
	c, _, err := asyncapi.Dial(ctx, bannerLine(t, r.stdout.String(), "Connect:  "), nil)
	if err != nil {
		t.Fatalf("connect with the banner's URL: %v", err)
	}
	defer c.CloseNow()

	samples := []struct{ file, function, answer string }{
		{"sqs-job-batch.json", "JobEventsFunction", `{"batchItemFailures":[]}`},
		{"s3-put.json", "S3UploadFunction", `{"published":1}`},
	}
	var want, got []string
	for _, s := range samples {
		data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "events", s.file))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post("http://"+r.addr+"/2015-03-31/functions/"+s.function+"/invocations", "application/json", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(answer) != s.answer {
			t.Fatalf("events/%s answered %s, want %s", s.file, answer, s.answer)
		}
	}
	want = []string{"job_progress", "job_complete", "error", "file_uploaded"}
	for range want {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("after %v, no more events: %v", got, err)
		}
		var ev struct{ Type string }
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatalf("received %s: %v", data, err)
		}
		got = append(got, ev.Type)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("received %v, want %v", got, want)
	}
}

// TestTheBannersNodeLineReceivesTheFireLinesEvent runs the banner's Node.js
// line as printed, with the URL as it is, from the repository's root as
// after make run, and sees the fire line's event arrive.
func TestTheBannersNodeLineReceivesTheFireLinesEvent(t *testing.T) {
	r := runLocalMode(t, nil)
	waitLogged(t, r.stdout, "Store:")
	banner := r.stdout.String()
	line, _, _ := strings.Cut(bannerLine(t, banner, "Node.js:  "), "   (")
	args := shellArgs(t, "node", line)
	if len(args) != 2 || args[0] != "infra/node/seed-client.js" {
		t.Fatalf("the Node.js line %q runs node with %q", line, args)
	}
	if connect := bannerLine(t, banner, "Connect:  "); args[1] != connect {
		t.Fatalf("the Node.js line connects to %s, the Connect line to %s", args[1], connect)
	}
	p := testenv.StartNode(t, nil, filepath.Join(testenv.RepoRoot(t), args[0]), args[1])
	client := &seedClient{out: p.Lines, stdin: p.Stdin, stderr: p.Stderr, deadline: time.After(30 * time.Second)}
	for client.next(t, `"Connected"`) != "Connected" {
	}
	url, body := curlRequest(t, "curl "+bannerLine(t, banner, "curl "))
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for {
		if line := client.next(t, "the fire line's event"); strings.HasPrefix(line, "EVENT ") {
			if !strings.Contains(line, `"type":"job_progress"`) {
				t.Fatalf("node printed %s", line)
			}
			return
		}
	}
}

// TestTheBannersPublishLineWorksAsPrinted runs the banner's publish API line
// through a shell as printed: its answer holds to docs/openapi.yaml and
// names the event the banner's client receives.
func TestTheBannersPublishLineWorksAsPrinted(t *testing.T) {
	t.Parallel()
	r := runLocalMode(t, nil)
	waitLogged(t, r.stdout, "Store:")
	banner := r.stdout.String()
	ctx, cancel := context.WithTimeout(context.Background(), processWait)
	defer cancel()
	c, _, err := asyncapi.Dial(ctx, bannerLine(t, banner, "Connect:  "), nil)
	if err != nil {
		t.Fatalf("connect with the banner's URL: %v", err)
	}
	defer c.CloseNow()
	args := shellArgs(t, "curl", "curl "+bannerLine(t, banner, "Publish API: curl "))
	if len(args) != 4 || args[0] != "-s" || args[2] != "-d" || !strings.HasSuffix(args[1], "/v1/publish") {
		t.Fatalf("the publish line gives curl %q", args)
	}
	for i := range 2 { // each run is a new event
		resp, err := http.Post(args[1], "application/json", strings.NewReader(args[3]))
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := openapi.CheckResponse("POST", "/v1/publish", resp.StatusCode, answer); err != nil {
			t.Error(err)
		}
		var ans struct {
			Results []struct {
				ID             string
				Seq, Delivered int
			}
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(answer, &ans) != nil || len(ans.Results) != 1 ||
			ans.Results[0].Delivered != 1 || ans.Results[0].Seq != i+1 {
			t.Fatalf("the publish line got %d %s", resp.StatusCode, answer)
		}
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("no event after the publish line: %v", err)
		}
		var ev struct{ Type, ID string }
		if json.Unmarshal(data, &ev) != nil || ev.Type != "job_progress" || ev.ID != ans.Results[0].ID {
			t.Fatalf("received %s, the answer said %s", data, answer)
		}
	}
}
