// Package emf writes the service's figures (package metrics) as CloudWatch
// metrics in the Embedded Metric Format: JSON log lines that CloudWatch Logs
// turns into metrics as it ingests a Lambda function's output. A function
// makes no API call for its metrics: it pays a few log lines and some
// microseconds per invocation.
//
// A Recorder adds up one invocation's figures in memory; the function's main
// calls Flush when the invocation ends (shared/app does), which writes them
// as one document (one log line) when it can: one directive for the figures
// split by function alone, one for each figure split further, all reading
// the same root. A second document comes only when the invocation saw two
// values of a dimension (two event types, two refusal reasons), since a
// root member has one value, or more than 100 values of a distribution. A
// counter that stayed at 0 is not written. aws-lambda-go has no writer for
// the format and AWS's own libraries for it are for other languages, so
// this one follows the specification itself
// (CloudWatch_Embedded_Metric_Format_Specification). A lone publish:
//
//	{"BytesPushed":187,"Deliveries":1,"EventsPublished":1,"FanoutDuration":12.346,
//	 "FunctionName":"wsnotify-JobEventsFunction-Ab12","Path":"queue","Type":"job_progress",
//	 "_aws":{"Timestamp":1764151530123,"CloudWatchMetrics":[
//	  {"Namespace":"wsnotify","Dimensions":[["FunctionName"]],"Metrics":[{"Name":"BytesPushed","Unit":"Bytes"},
//	    {"Name":"Deliveries","Unit":"Count"},{"Name":"FanoutDuration","Unit":"Milliseconds"}]},
//	  {"Namespace":"wsnotify","Dimensions":[["FunctionName","Path","Type"],["FunctionName","Path"]],
//	    "Metrics":[{"Name":"EventsPublished","Unit":"Count"}]}]}}
package emf

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
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
	// Milliseconds to the microsecond: finer is noise, and each digit is
	// a log byte.
	r.observe(metrics.FanoutDuration, math.Round(float64(p.Duration)/float64(time.Microsecond))/1000)
}

// PushAttempts implements apigw.Metrics.
func (r *Recorder) PushAttempts(throttled, retried int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add(metrics.PushesThrottled, "", float64(throttled))
	r.add(metrics.PushRetries, "", float64(retried))
}

// Metric is one metric of a document: its name, unit and values.
type Metric struct {
	Name   string
	Unit   metrics.Unit
	Values []float64
}

// Flush writes what was recorded since the last Flush and forgets it, in as
// few documents as the format allows: usually one (see Write). A sum of 0
// is left out: a counter with nothing to count writes nothing, and
// CloudWatch has no datapoint for it that minute (the alarms and the
// dashboard read a missing datapoint as 0). A distribution keeps every
// value observed, zeros included. Nothing recorded, nothing written.
func (r *Recorder) Flush() error {
	r.mu.Lock()
	sums, values := r.sums, r.values
	r.sums, r.values = map[series]float64{}, map[series][]float64{}
	r.mu.Unlock()

	type key struct{ dimension, value, path string }
	byKey := map[key][]Metric{}
	for s, v := range sums {
		if v == 0 {
			continue
		}
		k := key{s.figure.Dimension, s.value, s.path}
		byKey[k] = append(byKey[k], Metric{Name: s.figure.Name, Unit: s.figure.Unit, Values: []float64{v}})
	}
	for s, v := range values {
		k := key{s.figure.Dimension, s.value, s.path}
		byKey[k] = append(byKey[k], Metric{Name: s.figure.Name, Unit: s.figure.Unit, Values: v})
	}
	keys := slices.SortedFunc(maps.Keys(byKey), func(a, b key) int {
		return cmp.Or(strings.Compare(a.dimension, b.dimension), strings.Compare(a.value, b.value), strings.Compare(a.path, b.path))
	})
	groups := make([]Group, 0, len(keys))
	for _, k := range keys {
		ms := byKey[k]
		slices.SortFunc(ms, func(a, b Metric) int { return strings.Compare(a.Name, b.Name) })
		dims := []Dimension{{metrics.DimFunction, r.function}}
		if k.path != "" {
			// A figure split by path is always declared with it: in the
			// cloud a function publishes by one path, so the series by
			// function and path replace those by function alone.
			dims = append(dims, Dimension{metrics.DimPath, k.path})
		}
		base := make([]string, len(dims))
		for i, d := range dims {
			base[i] = d.Name
		}
		sets := [][]string{base}
		if k.dimension != "" {
			// Both sets: the figure by function (and path) and value, and
			// without the value (CloudWatch adds up the documents of every
			// value into it).
			dims = append(dims, Dimension{k.dimension, k.value})
			sets = [][]string{append(slices.Clone(base), k.dimension), base}
		}
		groups = append(groups, Group{Dims: dims, Sets: sets, Metrics: ms})
	}
	return Write(r.w, time.Now(), r.namespace, groups)
}

// Dimension is a dimension's name and value.
type Dimension struct{ Name, Value string }

// Group is metrics that share their dimensions: the dimensions' values and
// the dimension sets the metrics are declared in (each set names some of
// Dims). A group becomes one directive of a document.
type Group struct {
	Dims    []Dimension
	Sets    [][]string
	Metrics []Metric
}

// Write writes groups as EMF documents, one a line, as few as the format
// allows. One document holds several directives, each with its own
// dimension sets, but every dimension and every metric is one member of the
// document's root, with one value: two groups that give the same dimension
// different values (two event types, two reasons), or that hold a metric of
// the same name, need two documents. So does a metric of more than
// MaxValues values (its further values continue in further documents), and
// so do more than MaxMetrics metrics: the specification limits a directive
// to 100 metrics, and Write keeps a whole document to that, which is never
// a line more for this service (it has a dozen figures).
//
// Each part of a group (its metrics' first MaxValues values, the next ones,
// ...) goes into the first document it fits. Parts of one figure always
// clash with each other, and the figures share no dimension with another
// value, so the documents are as many as the parts of the figure that has
// the most: one for a lone publish, one more per further event type or
// reason in the invocation, one more per further 100 values of a
// distribution.
func Write(w io.Writer, at time.Time, namespace string, groups []Group) error {
	for _, g := range groups {
		names := map[string]bool{}
		for _, d := range g.Dims {
			names[d.Name] = true
		}
		for _, m := range g.Metrics {
			if names[m.Name] {
				return fmt.Errorf("metrics: %s is twice a member of one document", m.Name)
			}
			names[m.Name] = true
		}
	}
	var docs []*document
	for round := 0; ; round++ {
		placed := false
		for gi, g := range groups {
			var part []Metric
			for _, m := range g.Metrics {
				if lo := round * MaxValues; lo < len(m.Values) {
					part = append(part, Metric{Name: m.Name, Unit: m.Unit, Values: m.Values[lo:min(len(m.Values), lo+MaxValues)]})
				}
			}
			for len(part) > 0 {
				placed = true
				d := firstFit(docs, g.Dims, part)
				if d == nil {
					d = newDocument()
					docs = append(docs, d)
				}
				part = d.add(gi, g, part)
			}
		}
		if !placed {
			break
		}
	}
	for _, d := range docs {
		if err := d.write(w, at, namespace); err != nil {
			return err
		}
	}
	return nil
}

// document is one EMF document being filled: its root's members (the
// dimensions' and the metrics' values) and its directives, by group.
type document struct {
	dims       map[string]string
	metrics    map[string][]float64
	directives []directive
	groups     []int // the group of each directive
}

func newDocument() *document {
	return &document{dims: map[string]string{}, metrics: map[string][]float64{}}
}

// firstFit returns the first of docs that can take at least the first of
// ms with the dimensions dims, or nil.
func firstFit(docs []*document, dims []Dimension, ms []Metric) *document {
	for _, d := range docs {
		if d.fits(dims) && d.room(ms[0]) {
			return d
		}
	}
	return nil
}

// fits reports whether d's root can take dims: each is absent or has the
// same value, and is no metric's name.
func (d *document) fits(dims []Dimension) bool {
	for _, dim := range dims {
		if v, ok := d.dims[dim.Name]; ok && v != dim.Value {
			return false
		}
		if _, ok := d.metrics[dim.Name]; ok {
			return false
		}
	}
	return true
}

// room reports whether d can take m: no member of its name yet, and fewer
// than MaxMetrics metrics.
func (d *document) room(m Metric) bool {
	_, isMetric := d.metrics[m.Name]
	_, isDim := d.dims[m.Name]
	return !isMetric && !isDim && len(d.metrics) < MaxMetrics
}

// add puts into d, in the directive of group gi, the metrics of ms it has
// room for, and returns the others.
func (d *document) add(gi int, g Group, ms []Metric) (rest []Metric) {
	for _, dim := range g.Dims {
		d.dims[dim.Name] = dim.Value
	}
	i := slices.Index(d.groups, gi)
	if i < 0 {
		d.groups = append(d.groups, gi)
		d.directives = append(d.directives, directive{Dimensions: g.Sets})
		i = len(d.directives) - 1
	}
	for _, m := range ms {
		if !d.room(m) {
			rest = append(rest, m)
			continue
		}
		d.metrics[m.Name] = m.Values
		d.directives[i].Metrics = append(d.directives[i].Metrics, definition{Name: m.Name, Unit: m.Unit})
	}
	return rest
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

// write writes d as one line: the metadata, then the dimensions' and the
// metrics' values as members of the root (the format's target members).
func (d *document) write(w io.Writer, at time.Time, namespace string) error {
	root := make(map[string]any, 1+len(d.dims)+len(d.metrics))
	for name, value := range d.dims {
		root[name] = value
	}
	for name, values := range d.metrics {
		if len(values) == 1 {
			root[name] = values[0]
		} else {
			root[name] = values
		}
	}
	for i := range d.directives {
		d.directives[i].Namespace = namespace
	}
	root["_aws"] = metadata{Timestamp: at.UnixMilli(), CloudWatchMetrics: d.directives}
	line, err := json.Marshal(root)
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
