// Package emf writes the service's figures (package metrics) as CloudWatch
// metrics in the Embedded Metric Format: JSON log lines that CloudWatch Logs
// turns into metrics as it ingests a Lambda function's output. A function
// makes no API call for its metrics: it pays a few log lines and some
// microseconds per invocation.
//
// A Recorder adds up one invocation's figures in memory; the function's main
// calls Flush when the invocation ends (shared/app does), which writes one
// line per dimension value seen. aws-lambda-go has no writer for the format
// and AWS's own libraries for it are for other languages, so this one
// follows the specification itself (CloudWatch_Embedded_Metric_Format_Specification):
//
//	{"_aws":{"Timestamp":1764151530123,"CloudWatchMetrics":[{"Namespace":"wsnotify",
//	  "Dimensions":[["FunctionName","Type"],["FunctionName"]],
//	  "Metrics":[{"Name":"EventsPublished","Unit":"Count"}]}]},
//	 "FunctionName":"wsnotify-JobEventsFunction-Ab12","Type":"job_progress","EventsPublished":3}
package emf

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wsnotify/wsnotify/shared/metrics"
	"github.com/wsnotify/wsnotify/shared/notify"
)

// Limits of the specification.
const (
	// MaxMetrics is the most MetricDefinitions one directive may hold.
	MaxMetrics = 100
	// MaxValues is the most values one metric's array may hold.
	MaxValues = 100
	// MaxDimensionValue is the longest dimension value.
	MaxDimensionValue = 1024
)

// series is one figure under one value of its dimension ("" for none) and,
// for a figure split by path, one path ("" for the others).
type series struct {
	figure metrics.Figure
	value  string
	path   string
}

// Recorder adds up a function's figures until Flush writes them. It
// implements notify.Metrics and apigw.Metrics and is safe for concurrent use.
type Recorder struct {
	w         io.Writer
	namespace string
	function  string

	mu     sync.Mutex
	sums   map[series]float64
	values map[series][]float64 // the figures that are Distributions
}

var _ notify.Metrics = (*Recorder)(nil)

// namespacePattern is CloudWatch's rule for a namespace: 1-255 of letters,
// digits, . - _ / # : and space, not starting with a space.
var namespacePattern = regexp.MustCompile(`^[A-Za-z0-9._/#:-][A-Za-z0-9 ._/#:-]{0,254}$`)

// CheckNamespace refuses a namespace CloudWatch would not take: see
// namespacePattern; "AWS/" is reserved for AWS's own services.
func CheckNamespace(namespace string) error {
	if !namespacePattern.MatchString(namespace) || strings.HasPrefix(namespace, "AWS/") {
		return fmt.Errorf("metrics namespace %q: want 1-255 of A-Z a-z 0-9 . - _ / # : and space, not starting with AWS/", namespace)
	}
	return nil
}

// New returns a Recorder that writes to w (the function's stdout) under
// namespace, every metric with the dimension FunctionName = function.
func New(w io.Writer, namespace, function string) (*Recorder, error) {
	if err := CheckNamespace(namespace); err != nil {
		return nil, err
	}
	if strings.TrimSpace(function) == "" || len(function) > MaxDimensionValue {
		return nil, fmt.Errorf("function name %q: must be 1-%d characters", function, MaxDimensionValue)
	}
	return &Recorder{w: w, namespace: namespace, function: function,
		sums: map[series]float64{}, values: map[series][]float64{}}, nil
}

func (r *Recorder) add(f metrics.Figure, value string, n float64) {
	r.sums[series{figure: f, value: value}] += n
}

func (r *Recorder) observe(f metrics.Figure, v float64) {
	s := series{figure: f}
	r.values[s] = append(r.values[s], v)
}

// ConnectAccepted implements notify.Metrics.
func (r *Recorder) ConnectAccepted(ownerConnections int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add(metrics.ConnectsAccepted, "", 1)
	r.observe(metrics.OwnerConnections, float64(ownerConnections))
}

// ConnectRefused implements notify.Metrics.
func (r *Recorder) ConnectRefused(code notify.Code) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add(metrics.ConnectsRefused, metrics.Reason(code), 1)
}

// Disconnected implements notify.Metrics.
func (r *Recorder) Disconnected() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add(metrics.Disconnects, "", 1)
}

// Published implements notify.Metrics.
func (r *Recorder) Published(p notify.Publication) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// The type is one of metrics.EventTypes: Publish takes only valid events.
	r.sums[series{metrics.EventsPublished, string(p.Type), metrics.PathName(p.Path)}]++
	r.add(metrics.Deliveries, "", float64(p.Result.Delivered))
	r.add(metrics.PushesGone, "", float64(p.Result.Gone))
	r.add(metrics.PushesFailed, "", float64(p.Result.Failed))
	r.add(metrics.BytesPushed, "", float64(p.Bytes))
	r.observe(metrics.FanoutDuration, float64(p.Duration)/float64(time.Millisecond))
}

// PushAttempts implements apigw.Metrics.
func (r *Recorder) PushAttempts(throttled, retried int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add(metrics.PushesThrottled, "", float64(throttled))
	r.add(metrics.PushRetries, "", float64(retried))
}

// Metric is one metric of a line: its name, unit and values.
type Metric struct {
	Name   string
	Unit   metrics.Unit
	Values []float64
}

// Flush writes what was recorded since the last Flush and forgets it: one
// line for the figures without a dimension, one per reason and event type
// seen. Nothing recorded, nothing written.
func (r *Recorder) Flush() error {
	r.mu.Lock()
	sums, values := r.sums, r.values
	r.sums, r.values = map[series]float64{}, map[series][]float64{}
	r.mu.Unlock()

	type group struct{ dimension, value, path string }
	lines := map[group][]Metric{}
	for s, v := range sums {
		g := group{s.figure.Dimension, s.value, s.path}
		lines[g] = append(lines[g], Metric{Name: s.figure.Name, Unit: s.figure.Unit, Values: []float64{v}})
	}
	for s, v := range values {
		g := group{s.figure.Dimension, s.value, s.path}
		lines[g] = append(lines[g], Metric{Name: s.figure.Name, Unit: s.figure.Unit, Values: v})
	}
	groups := make([]group, 0, len(lines))
	for g := range lines {
		groups = append(groups, g)
	}
	slices.SortFunc(groups, func(a, b group) int {
		return strings.Compare(a.dimension+"\x00"+a.value+"\x00"+a.path, b.dimension+"\x00"+b.value+"\x00"+b.path)
	})
	now := time.Now()
	for _, g := range groups {
		ms := lines[g]
		slices.SortFunc(ms, func(a, b Metric) int { return strings.Compare(a.Name, b.Name) })
		dims := []Dimension{{metrics.DimFunction, r.function}}
		if g.path != "" {
			// A figure split by path is always declared with it: in the
			// cloud a function publishes by one path, so the series by
			// function and path replace those by function alone.
			dims = append(dims, Dimension{metrics.DimPath, g.path})
		}
		base := make([]string, len(dims))
		for i, d := range dims {
			base[i] = d.Name
		}
		sets := [][]string{base}
		if g.dimension != "" {
			// Both sets: the figure by function (and path) and value, and
			// without the value (CloudWatch sums the lines of every value
			// into it).
			dims = append(dims, Dimension{g.dimension, g.value})
			sets = [][]string{append(slices.Clone(base), g.dimension), base}
		}
		if err := Write(r.w, now, r.namespace, dims, sets, ms); err != nil {
			return err
		}
	}
	return nil
}

// Dimension is a dimension's name and value.
type Dimension struct{ Name, Value string }

// Write writes ms as EMF lines with the given dimensions, declared in the
// dimension sets sets: as many lines as the limits need (at most MaxMetrics
// metrics a line, at most MaxValues values a metric). A metric with more
// values continues on the next lines.
func Write(w io.Writer, at time.Time, namespace string, dims []Dimension, sets [][]string, ms []Metric) error {
	for round := 0; ; round++ {
		var batch []Metric
		for _, m := range ms {
			if lo := round * MaxValues; lo < len(m.Values) {
				batch = append(batch, Metric{Name: m.Name, Unit: m.Unit, Values: m.Values[lo:min(len(m.Values), lo+MaxValues)]})
			}
		}
		if len(batch) == 0 {
			return nil
		}
		for chunk := range slices.Chunk(batch, MaxMetrics) {
			if err := writeLine(w, at, namespace, dims, sets, chunk); err != nil {
				return err
			}
		}
	}
}

type definition struct {
	Name string       `json:"Name"`
	Unit metrics.Unit `json:"Unit,omitempty"`
}

type directive struct {
	Namespace  string       `json:"Namespace"`
	Dimensions [][]string   `json:"Dimensions"`
	Metrics    []definition `json:"Metrics"`
}

type metadata struct {
	Timestamp         int64       `json:"Timestamp"`
	CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
}

// writeLine writes one document: the metadata, then the dimensions' and the
// metrics' values as members of the root (the format's target members).
func writeLine(w io.Writer, at time.Time, namespace string, dims []Dimension, sets [][]string, ms []Metric) error {
	doc := make(map[string]any, 1+len(dims)+len(ms))
	d := directive{Namespace: namespace, Dimensions: sets, Metrics: make([]definition, len(ms))}
	for i, m := range ms {
		d.Metrics[i] = definition{Name: m.Name, Unit: m.Unit}
		if len(m.Values) == 1 {
			doc[m.Name] = m.Values[0]
		} else {
			doc[m.Name] = m.Values
		}
	}
	for _, dim := range dims {
		doc[dim.Name] = dim.Value
	}
	doc["_aws"] = metadata{Timestamp: at.UnixMilli(), CloudWatchMetrics: []directive{d}}
	line, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode metrics: %w", err)
	}
	// One write per line: CloudWatch Logs takes each line of the output as
	// one log event, and a line must be one whole document.
	if _, err := w.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("write metrics: %w", err)
	}
	return nil
}
