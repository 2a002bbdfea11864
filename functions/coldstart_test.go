package functions_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/testenv"
)

// coldStartEvents is, per function, the events file its cold start answers.
var coldStartEvents = map[string]string{
	"connect": "connect.json", "disconnect": "disconnect.json", "default": "default-ping.json",
	"jobevents": "sqs-job-batch.json", "publish": "http-connections.json", "s3upload": "s3-put.json",
}

// BenchmarkColdStart measures, per function, the time from starting the
// emulator and the bootstrap to the first answered invocation — what a cold
// start adds before Lambda's own provisioning — and reports the binary's size.
//
//	go test -run '^$' -bench ColdStart -benchtime 7x ./functions/
func BenchmarkColdStart(b *testing.B) {
	endpoint := testenv.Dynalite(b)
	for _, name := range []string{"connect", "disconnect", "default", "jobevents", "publish", "s3upload"} {
		bootstrap := testenv.Bootstrap(b, name)
		info, _ := os.Stat(bootstrap)
		b.Run(name, func(b *testing.B) {
			var runs []time.Duration
			for b.Loop() {
				runs = append(runs, coldStart(b, endpoint, bootstrap, name))
			}
			slices.Sort(runs)
			b.ReportMetric(float64(runs[len(runs)/2].Microseconds())/1000, "ms-median-to-first-answer")
			b.ReportMetric(float64(info.Size()), "bytes")
		})
	}
}

// coldStart starts function name's bootstrap under the emulator, sends it its
// events file and returns the time to the answer, failing tb unless the
// invocation answers 200.
func coldStart(tb testing.TB, endpoint, bootstrap, name string) time.Duration {
	tb.Helper()
	body, err := os.ReadFile(filepath.Join("..", "events", coldStartEvents[name]))
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	l := testenv.StartLambda(tb, bootstrap, testenv.FunctionEnv("coldstart", endpoint, "http://127.0.0.1:9/prod")...)
	resp, err := http.Post(l.URL, "application/json", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s's invocation answered %d\n%s", name, resp.StatusCode, l.Output)
	}
	return time.Since(start)
}

// TestTheColdStartBenchmarkRuns runs one iteration of BenchmarkColdStart's
// loop, on the default function, as a test: under testing.Benchmark a
// failing iteration would not fail it.
func TestTheColdStartBenchmarkRuns(t *testing.T) {
	coldStart(t, testenv.Dynalite(t), testenv.Bootstrap(t, "default"), "default")
}
