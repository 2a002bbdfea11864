package main

import (
	"fmt"
	"runtime"

	"github.com/wsnotify/wsnotify/infra/gendoc"
)

// Measurements are what TestMeasure counted on the real code paths; the
// program prices them (see price.go).
type Measurements struct {
	Date    string `json:"date"`
	Machine string `json:"machine"`
	// PostLatencyMs is the Management API stand-in's answer time per post.
	PostLatencyMs float64 `json:"postLatencyMs"`
	// Fanout is one job_progress published to an owner of Connections
	// connections by JobEventsFunction at MemoryMB, from the queue.
	Fanout []FanoutRun `json:"fanout"`
	// Publish is the same by PublishFunction at MemoryMB, through its
	// function URL: one message a request (Batch10: 10 a request).
	Publish []FanoutRun `json:"publish"`
	// HandoffAbove is the owner size above which PublishFunction handed
	// the fan-out to FanoutFunction (the template's HandoffAbove).
	HandoffAbove int `json:"handoffAbove"`
	// Events is one event of each owner-wide type to an owner of one
	// connection, by type.
	Events map[string]Counts `json:"events"`
	// Job is a job of Files files, a job_progress per file and a
	// job_complete, to an owner of one connection.
	Job struct {
		Files int `json:"files"`
		// Raw is one message per invocation: nothing is coalesced.
		Raw Counts `json:"raw"`
		// Coalesced is SQS batches of 10 (the template's JobEventsBatchSize).
		Coalesced Counts `json:"coalesced"`
	} `json:"job"`
	// FunctionMemoryMB is the memory of connect, default and disconnect
	// while measured.
	FunctionMemoryMB int `json:"functionMemoryMB"`
	// Connect, Resume, Ping, Disconnect: a client that missed the job
	// reconnects and resumes from seq 0, pings once, and leaves.
	Connect    Counts `json:"connect"`
	Resume     Counts `json:"resume"`
	Ping       Counts `json:"ping"`
	Disconnect Counts `json:"disconnect"`
	// SignedConnects are connects with signed tokens, one container: the
	// secret is read once and cached.
	SignedConnects Counts `json:"signedConnects"`
	// MetricSeries are the custom metrics (namespace, name, dimension
	// values) the measured invocations' EMF lines wrote to.
	MetricSeries []string `json:"metricSeries"`
}

// FanoutRun is one publish of the fan-out table.
type FanoutRun struct {
	Connections int `json:"connections"`
	MemoryMB    int `json:"memoryMB"`
	Counts
	// Batch10 is one invocation publishing 10 events of 10 jobs (a busy
	// queue, or a producer's request of 10 messages), for owners of up to
	// maxBatched connections.
	Batch10 Counts `json:"batch10"`
	// Handoff is FanoutFunction's invocation when PublishFunction handed
	// the fan-out to it (an owner above HandoffAbove); its DynamoDB
	// requests and posts are counted in Counts, the publish's.
	Handoff Counts `json:"handoff,omitzero"`
}

// Counts are the billable figures of one or more invocations.
type Counts struct {
	Invocations int          `json:"invocations"`
	Dynamo      dynamoCounts `json:"dynamo"`
	// Posts to connections, their API Gateway message units (32 KB) and bytes.
	Posts        int `json:"posts"`
	MessageUnits int `json:"messageUnits"`
	PostBytes    int `json:"postBytes"`
	// WallMs is the invocations' time at the Invoke API; CPUMs the
	// bootstrap's CPU time in them (one processor, GOMAXPROCS=1).
	WallMs    float64 `json:"wallMs"`
	CPUMs     float64 `json:"cpuMs"`
	PeakRSSMB float64 `json:"peakRssMB"`
	// EMFBytes are the metric lines' bytes (CloudWatch Logs ingestion),
	// LogBytes the function's other lines', PlatformBytes Lambda's own
	// (START, END, REPORT: written only at SystemLogLevel INFO or DEBUG).
	EMFBytes      int `json:"emfBytes"`
	LogBytes      int `json:"logBytes"`
	PlatformBytes int `json:"platformBytes"`
	// SecretsCalls are the Secrets Manager requests.
	SecretsCalls int `json:"secretsCalls,omitempty"`

	answer []byte   // the invocation's answer, for the measure's checks
	series []string // the custom metrics its EMF lines wrote to
}

// dynamoCounts are the DynamoDB requests by operation and the read and
// write units they consumed.
type dynamoCounts struct {
	Requests map[string]int `json:"requests"`
	RRU      float64        `json:"rru"`
	WRU      float64        `json:"wru"`
}

func (c dynamoCounts) total() int {
	n := 0
	for _, v := range c.Requests {
		n += v
	}
	return n
}

// writes is the number of write requests.
func (c dynamoCounts) writes() int {
	n := 0
	for op, v := range c.Requests {
		if !readOp(op) {
			n += v
		}
	}
	return n
}

// readOp reports whether a DynamoDB operation reads (read units).
func readOp(op string) bool {
	switch op {
	case "GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems":
		return true
	}
	return false
}

// sum adds runs up; the peak memory is the largest.
func sum(runs []Counts) Counts {
	var s Counts
	s.Dynamo.Requests = map[string]int{}
	for _, r := range runs {
		s.Invocations += r.Invocations
		for op, n := range r.Dynamo.Requests {
			s.Dynamo.Requests[op] += n
		}
		s.Dynamo.RRU += r.Dynamo.RRU
		s.Dynamo.WRU += r.Dynamo.WRU
		s.Posts += r.Posts
		s.MessageUnits += r.MessageUnits
		s.PostBytes += r.PostBytes
		s.WallMs += r.WallMs
		s.CPUMs += r.CPUMs
		s.PeakRSSMB = max(s.PeakRSSMB, r.PeakRSSMB)
		s.EMFBytes += r.EMFBytes
		s.LogBytes += r.LogBytes
		s.PlatformBytes += r.PlatformBytes
		s.SecretsCalls += r.SecretsCalls
	}
	return s
}

// messageUnits is what API Gateway bills for a WebSocket message of n
// bytes: one message per 32 KB, started.
func messageUnits(n int) int { return max(1, (n+32*1024-1)/(32*1024)) }

// machine describes the machine the figures come from.
func machine() string {
	return fmt.Sprintf("%s, %d cores, %s/%s", gendoc.CPU(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
}
