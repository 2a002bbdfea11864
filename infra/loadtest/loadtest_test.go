package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/testenv"
)

// TestSmallLoadLosesNothing is the load test at 1,000 connections, run by
// make test: every accepted event reaches every connection of its owner once,
// and no connection sees another owner's event.
func TestSmallLoadLosesNothing(t *testing.T) {
	bin := testenv.LocalMode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := &strings.Builder{}
	rep, err := Run(ctx, Config{
		Server: bin, Port: testenv.FreePort(t),
		Connections: 1000, Owners: 10, Events: 100, Rate: 200, Dialers: 32,
		Settle: time.Minute, Log: log,
	})
	if err != nil {
		t.Fatalf("load run: %v\nserver output:\n%s", err, tail(log.String(), 40))
	}
	t.Logf("\n%s", rep)
	if strings.Contains(log.String(), "level=INFO") {
		t.Errorf("the server's INFO lines were passed on:\n%s", tail(log.String(), 10))
	}
	if rep.EventsAccepted != 100 || rep.DeliveriesExpected != 100*100 {
		t.Fatalf("accepted %d events, expected %d deliveries; want 100 and 10000", rep.EventsAccepted, rep.DeliveriesExpected)
	}
	if rep.Lost != 0 || rep.Duplicated != 0 || rep.Unexpected != 0 || rep.DeliveriesReceived != rep.DeliveriesExpected {
		t.Fatalf("lost %d, duplicated %d, to the wrong owner %d, received %d of %d",
			rep.Lost, rep.Duplicated, rep.Unexpected, rep.DeliveriesReceived, rep.DeliveriesExpected)
	}
	// The server's own figures, read from /metrics, tell the same story.
	if d := rep.Disagreements(); len(d) > 0 || rep.Server.Deliveries != 100*100 {
		t.Fatalf("/metrics disagrees with the load test: %v (server deliveries %d)", d, rep.Server.Deliveries)
	}
	if rep.ServerRSSPeak < rep.ServerRSSLoaded || rep.DeliveriesPerSecond != 200*100 || rep.LatencyP99 == 0 {
		t.Fatalf("peak RSS %d under the loaded %d, %g deliveries/s, p99 %v: the report is incomplete",
			rep.ServerRSSPeak, rep.ServerRSSLoaded, rep.DeliveriesPerSecond, rep.LatencyP99)
	}
}

func TestDisagreementsNameEachFigureThatDiffers(t *testing.T) {
	good := Report{Connections: 10, EventsAccepted: 2, DeliveriesExpected: 20, DeliveriesReceived: 20, RateLimited: 1,
		Server: ServerFigures{ConnectsAccepted: 10, RateLimited: 1, LiveConnections: 10, EventsPublished: 2, Deliveries: 20}}
	if d := good.Disagreements(); len(d) != 0 {
		t.Fatalf("a run that agrees: %v", d)
	}
	bad := good
	bad.Lost = 1
	bad.DeliveriesReceived = 19
	bad.Server.PushesGone = 1
	bad.Server.LiveConnections = 9
	d := strings.Join(bad.Disagreements(), "\n")
	for _, want := range []string{"lost", "deliveries: /metrics says 20, the load test counted 19", "pushes gone", "live connections"} {
		if !strings.Contains(d, want) {
			t.Errorf("disagreements %q do not name %q", d, want)
		}
	}
	if !strings.Contains(bad.String(), "THEY DISAGREE") {
		t.Errorf("the report does not say it:\n%s", bad)
	}
}

func TestDropInfoPassesOnAllButInfoAndDebugLines(t *testing.T) {
	var out strings.Builder
	d := &dropInfo{w: &out}
	input := "time=1 level=INFO msg=connected connectionId=abc\n" +
		"time=2 level=WARN msg=\"push failed\"\n" +
		"time=3 level=DEBUG msg=x\n" +
		"time=4 level=ERROR msg=\"$connect integration failed\"\n" +
		"panic: something\n\ngoroutine 1 [running]:\n"
	// Written in pieces that cut lines anywhere, as a pipe delivers them.
	for i := 0; i < len(input); i += 7 {
		if _, err := d.Write([]byte(input[i:min(i+7, len(input))])); err != nil {
			t.Fatal(err)
		}
	}
	want := "time=2 level=WARN msg=\"push failed\"\n" +
		"time=4 level=ERROR msg=\"$connect integration failed\"\n" +
		"panic: something\n\ngoroutine 1 [running]:\n"
	if out.String() != want {
		t.Fatalf("passed on:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestTheClientsTellTheirEventsByJobID(t *testing.T) {
	for _, tc := range []struct {
		msg        string
		owner, seq int
		ok         bool
	}{
		{`{"type":"job_progress","jobId":"lt-7-1234","progress":50}`, 7, 1234, true},
		{`{"type":"pong"}`, 0, 0, false},
		{`{"jobId":"lt-7"}`, 0, 0, false},
		{`{"jobId":"lt-x-1"}`, 0, 0, false},
		{`{"jobId":"lt-1--2"}`, 0, 0, false},
		{`{"jobId":"lt-1-2`, 0, 0, false},
	} {
		owner, seq, ok := jobOf([]byte(tc.msg))
		if ok != tc.ok || (ok && (owner != tc.owner || seq != tc.seq)) {
			t.Errorf("jobOf(%s) = %d, %d, %v; want %d, %d, %v", tc.msg, owner, seq, ok, tc.owner, tc.seq, tc.ok)
		}
	}
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// TestALocalModeThatExitsAtOnceEndsTheRunWithItsExit: the run's clean-up
// waits for the server's exit, which the wait for its first answer has
// already seen; it must not wait for a second one.
func TestALocalModeThatExitsAtOnceEndsTheRunWithItsExit(t *testing.T) {
	done := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), Config{Server: "false", Port: testenv.FreePort(t),
			Connections: 1, Owners: 1, Events: 1, Rate: 1, Dialers: 1, Settle: time.Second, Log: &strings.Builder{}})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "local mode exited before answering (exit status 1)") {
			t.Fatalf("Run = %v, want local mode's early exit", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after local mode exited")
	}
}

// TestResumeRunCompletesForEveryClient runs the resume mode small: 20
// clients of one owner resume a history of 1,500 events at once, each
// receiving every event, packed into replay messages, then resumed.
func TestResumeRunCompletesForEveryClient(t *testing.T) {
	bin := testenv.LocalMode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := &strings.Builder{}
	rep, err := RunResume(ctx, Config{Server: bin, Port: testenv.FreePort(t), Connections: 20, Dialers: 8, Log: log}, 1500)
	if err != nil {
		t.Fatalf("resume run: %v\nserver output:\n%s", err, tail(log.String(), 40))
	}
	t.Logf("\n%s", rep)
	if rep.Events != 1500 || rep.Clients != 20 || rep.Completed != 20 {
		t.Fatalf("%d of %d clients completed a resume of %d events; want all 20 of 1,500", rep.Completed, rep.Clients, rep.Events)
	}
	if rep.Frames < 2 || rep.Frames >= 1500 {
		t.Fatalf("%d replay messages for 1,500 events; want them packed, more than one", rep.Frames)
	}
}
