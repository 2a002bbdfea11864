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

// BenchmarkColdStart measures, per function, the time from starting the
// emulator and the bootstrap to the first answered invocation — what a cold
// start adds before Lambda's own provisioning — and reports the binary's size.
//
//	go test -run '^$' -bench ColdStart -benchtime 7x ./functions/
func BenchmarkColdStart(b *testing.B) {
	benchmarkColdStart(b, "connect", "disconnect", "default", "jobevents", "s3upload")
}

func benchmarkColdStart(b *testing.B, functions ...string) {
	endpoint := testenv.Dynalite(b)
	dir := b.TempDir()
	events := map[string]string{
		"connect": "connect.json", "disconnect": "disconnect.json", "default": "default-ping.json",
		"jobevents": "sqs-job-batch.json", "s3upload": "s3-put.json",
	}
	for _, name := range functions {
		bootstrap := testenv.BuildBootstrap(b, dir, name)
		info, _ := os.Stat(bootstrap)
		body, _ := os.ReadFile(filepath.Join("..", "events", events[name]))
		b.Run(name, func(b *testing.B) {
			var runs []time.Duration
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				l := testenv.StartLambda(b, bootstrap, testenv.FunctionEnv("coldstart", endpoint, "http://127.0.0.1:9/prod")...)
				resp, err := http.Post(l.URL, "application/json", bytes.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("invocation %d answered %d", i, resp.StatusCode)
				}
				runs = append(runs, time.Since(start))
			}
			slices.Sort(runs)
			b.ReportMetric(float64(runs[len(runs)/2].Microseconds())/1000, "ms-median-to-first-answer")
			b.ReportMetric(float64(info.Size()), "bytes")
		})
	}
}

func TestTheColdStartBenchmarkRuns(t *testing.T) {
	if res := testing.Benchmark(func(b *testing.B) { benchmarkColdStart(b, "default") }); res.N < 1 {
		t.Fatalf("benchmark result %v", res)
	}
}
