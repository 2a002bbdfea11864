package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/clients/go/publish"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

func TestMakeDemoPrintsThePageURLAndRunsTheSimulationOnceAPageConnects(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	out, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, []string{"--addr", "127.0.0.1:0", "--step", "0", "--rounds", "1"}, outW, slog.New(slog.DiscardHandler))
		outW.Close()
	}()
	lines := testenv.Lines(out)
	next := func(what string) string {
		t.Helper()
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the demo stopped before %s: %v", what, <-done)
			}
			return line
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		}
		return ""
	}
	next("the banner")
	m := regexp.MustCompile(`Open the page: http://(\S+)/\?token=(wsn_\S+)`).FindStringSubmatch(next("the page's URL"))
	if m == nil {
		t.Fatal("no page URL with a key in the banner")
	}
	host, key := m[1], m[2]
	next("the note that the run waits for a page")

	conn, _, err := websocket.Dial(ctx, "ws://"+host+"/api/v1/ws/demo-test?token="+key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	var uploads, progress int
	var firstSeq float64 // of job_1_photos's first progress
	finished := map[string]string{}
	var failure map[string]any
	for len(finished) < 2 {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("after %d uploads, %d progress events, %v finished: %v", uploads, progress, finished, err)
		}
		var ev map[string]any
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatal(err)
		}
		switch ev["type"] {
		case "file_uploaded":
			uploads++
		case "job_progress":
			progress++
			if ev["jobId"] == "job_1_photos" && ev["processedCount"] == 1.0 {
				firstSeq, _ = ev["seq"].(float64)
			}
		case "error":
			failure = ev
		case "job_complete":
			finished[ev["jobId"].(string)] = ev["status"].(string)
		}
	}
	if uploads != 3 || progress != 12+5 {
		t.Errorf("%d uploads and %d progress events, want 3 and 17", uploads, progress)
	}
	if finished["job_1_photos"] != "completed" || finished["job_1_invoices"] != "failed" {
		t.Errorf("jobs finished: %v", finished)
	}
	if failure == nil || failure["jobId"] != "job_1_invoices" || failure["code"] != "PERMISSION_ERROR" {
		t.Errorf("the failing job's error: %v", failure)
	}
	// The run published its job events with the Go publisher through the
	// publish API: their idempotency keys name them there, so the same
	// event published again with its key is the first one, not a new one.
	first, _ := jobs(1)[0].events(1)
	res, err := publish.NewLocalClient("http://"+host, "").Publish(ctx,
		publish.Message{OwnerID: owner, IdempotencyKey: eventKey("job_1_photos", 1, first[0]), Event: first[0]})
	if err != nil || !res[0].Duplicate || float64(res[0].Seq) != firstSeq {
		t.Errorf("job_1_photos's first progress again: %+v, %v; want a duplicate of seq %v", res, err, firstSeq)
	}
	if line := next("the end of the rounds"); !strings.Contains(line, "Round 1") {
		t.Errorf("banner line %q", line)
	}
	next("the note that the rounds are done")
	conn.Close(websocket.StatusNormalClosure, "")
	stop()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func TestTheDemoRefusesToListenBeyondLoopback(t *testing.T) {
	for _, args := range [][]string{{"--addr", "0.0.0.0:8000"}, {"--step", "-1s"}, {"extra"}} {
		if _, err := parseOptions(args); err == nil {
			t.Errorf("parseOptions(%q) accepted", args)
		}
	}
}
