package main

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// syntheticOutputs are outputs shaped as each step prints them.
func syntheticOutputs() map[string][]byte {
	var fan strings.Builder
	for _, client := range []string{"pooled", "sdk-pipeline", "sdk-default"} {
		for _, start := range []string{"warm", "cold"} {
			for _, n := range fanOutSizes {
				for _, c := range fanOutConcurrences {
					for run := range 3 {
						fmt.Fprintf(&fan, "%s-2 \t1\t%d ns/op\t%d cpu-µs/post\t%d tls-conns/op\t%.3f x-ideal\n",
							fanOutName(client, start, n, c), (n*20/c+run)*1e6, 120+run, c, 1.1+float64(run)/100)
					}
				}
			}
		}
	}
	return map[string][]byte{
		"fanout": []byte(fan.String()),
		"requests": []byte("BenchmarkRequests/conns=1-2 20 1 ns/op 3 requests/connect 7 requests/publish 3 units/connect 6.5 units/publish\n" +
			"BenchmarkRequests/conns=100-2 20 1 ns/op 3 requests/connect 7 requests/publish 3 units/connect 8.5 units/publish\n" +
			"BenchmarkRequests/conns=5000-2 20 1 ns/op 3 requests/connect 7 requests/publish 3 units/connect 135.5 units/publish\n"),
		"coalescing": []byte("BenchmarkCoalescing-2 1 430274945 ns/op 1000100 posts-before/job 100100 posts/job 89.99 saved-%\n"),
		"load": []byte(`{"rate":5,"deliveriesPerSecond":50000,"lost":0,"latencyP50":40000000,"latencyP99":90000000,"rssPerConnectionBytes":15000,"rssPerConnectionPeakBytes":25000}
{"rate":20,"deliveriesPerSecond":200000,"lost":0,"latencyP50":70000000,"latencyP99":150000000,"rssPerConnectionBytes":15500,"rssPerConnectionPeakBytes":23000}
`),
		"publishapi": []byte("BenchmarkPublishAPI/connections=1-2 2000 134149 ns/op 0.095 ms-p50 1.013 ms-p99 7454 req/s\n" +
			"BenchmarkPublishAPI/connections=100-2 2000 5575748 ns/op 3.196 ms-p50 32.55 ms-p99 179.3 req/s\n"),
		"publishqueue": []byte("BenchmarkQueue/batched-2 20000 85833 ns/op 11651 msgs/s 17086 B/op 318 allocs/op\n" +
			"BenchmarkQueue/one_SendMessage_per_event-2 20000 237368 ns/op 4213 msgs/s 35556 B/op 423 allocs/op\n"),
		"coldstart": []byte("BenchmarkColdStart/connect-2 7 1 ns/op 35 ms-median-to-first-answer 1e7 bytes\n" +
			"BenchmarkColdStart/disconnect-2 7 1 ns/op 34 ms-median-to-first-answer 1e7 bytes\n" +
			"BenchmarkColdStart/default-2 7 1 ns/op 29 ms-median-to-first-answer 1e7 bytes\n" +
			"BenchmarkColdStart/jobevents-2 7 1 ns/op 36 ms-median-to-first-answer 1e7 bytes\n" +
			"BenchmarkColdStart/publish-2 7 1 ns/op 37 ms-median-to-first-answer 1e7 bytes\n" +
			"BenchmarkColdStart/s3upload-2 7 1 ns/op 35 ms-median-to-first-answer 1e7 bytes\n"),
	}
}

func TestTheTableShowsEachFigureWithItsTargetAndMachine(t *testing.T) {
	r := &runner{outputs: syntheticOutputs(), load: map[string]string{}}
	for name := range r.outputs {
		r.load[name] = "2 cores, load 1.0–2.0"
	}
	table, err := r.table()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table, fmt.Sprintf(" %d cores, ", runtime.NumCPU())) ||
		!strings.Contains(table, fmt.Sprintf(", %s/%s, %s. ", runtime.GOOS, runtime.GOARCH, runtime.Version())) {
		t.Errorf("the table does not name the machine it ran on:\n%s", table)
	}
	for _, want := range []string{
		"| Cloud fan-out: one publish to 10,000 connections, warm function, concurrency 192 | ≤ 1.5 s | 1.04 s",
		"100: 1.11×, 1,000: 1.11×, 10,000: 1.11× (posts through the SDK's operation pipeline: 1.11×, 1.11×, 1.11×)",
		"| 121 µs (through the SDK's operation pipeline: 121 µs; 10,000 posts: 1.2 CPU-s",
		"| 3 / 3 / 3 |",
		"100,100 (before: 1,000,100, 90% saved)",
		"| ≤ 20 KB | 15.1 KB",
		"| ≤ 100 ms | 150ms (70ms) |",
		"50,000/s (50,000/s: p99 90ms; 200,000/s: p99 150ms)",
		"default 29 ms",
		"publish 37 ms",
		"| 1 connection: p50 0.10 ms, p99 1.01 ms, 7,454 requests/s; 100 connections: p50 3.20 ms, p99 32.55 ms, 179 requests/s |",
		"| 192 | 11 ms (1.11×) | 105 ms (1.11×) | 1.04 s (1.11×) |",
		"| 2 cores, load 1.0–2.0 |",
		"| 11,651/s in SendMessageBatch calls of 10; 4,213/s with one SendMessage per event (2.8×) |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("the table lacks %q:\n%s", want, table)
		}
	}
}

func TestAMissingFigureIsAnError(t *testing.T) {
	outputs := syntheticOutputs()
	outputs["coalescing"] = nil
	r := &runner{outputs: outputs, load: map[string]string{}}
	if _, err := r.table(); err == nil || !strings.Contains(err.Error(), "BenchmarkCoalescing") {
		t.Fatalf("err = %v, want one naming the missing benchmark", err)
	}
}

// TestTheDefaultDocumentHasTheBenchSection holds docs/performance.md, the
// file make bench rewrites, to keeping its markers: without them the
// fifteen minutes of measuring would end in an error.
func TestTheDefaultDocumentHasTheBenchSection(t *testing.T) {
	if _, _, _, err := markers.Section(filepath.Join("..", "..", "docs", "performance.md")); err != nil {
		t.Fatalf("make bench could not write its table: %v", err)
	}
}
