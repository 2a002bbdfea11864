// Package emftest reads Embedded Metric Format lines back for tests, holding
// each to the format's specification as CloudWatch Logs would, and adds up
// their metrics as CloudWatch would.
package emftest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/metrics"
)

// Doc is one EMF document: a log line with an "_aws" member.
type Doc struct {
	Timestamp time.Time
	// Namespace is the first directive's (this service gives them all the
	// same).
	Namespace string
	// Directives are the document's MetricDirectives, in order.
	Directives []Directive
	// Dims are the values of the dimensions the directives name.
	Dims map[string]string
	// Units and Values by metric name, of every directive's metrics.
	Units  map[string]string
	Values map[string][]float64
}

// Directive is one MetricDirective: its namespace, its dimension sets and
// the names of its metrics.
type Directive struct {
	Namespace string
	Sets      [][]string
	Metrics   []string
}

// unitPattern is the specification's schema for Unit.
var unitPattern = regexp.MustCompile(`^(Seconds|Microseconds|Milliseconds|Bytes|Kilobytes|Megabytes|Gigabytes|Terabytes|Bits|Kilobits|Megabits|Gigabits|Terabits|Percent|Count|Bytes/Second|Kilobytes/Second|Megabytes/Second|Gigabytes/Second|Terabytes/Second|Bits/Second|Kilobits/Second|Megabits/Second|Gigabits/Second|Terabits/Second|Count/Second|None)$`)

// Parse returns the EMF documents among output's lines, failing t for each
// one that breaks the specification. Lines without an "_aws" member (log
// lines, the Lambda emulator's own output) are skipped.
func Parse(t testing.TB, output string) []Doc {
	t.Helper()
	var docs []Doc
	for i, line := range strings.Split(output, "\n") {
		if !strings.Contains(line, `"_aws"`) {
			continue
		}
		d, err := Check([]byte(line))
		if err != nil {
			t.Errorf("line %d is not a valid EMF document: %v\n%s", i+1, err, line)
			continue
		}
		docs = append(docs, d)
	}
	return docs
}

// Check decodes one line and checks it against the specification: the
// metadata object (Timestamp, an integer of milliseconds; CloudWatchMetrics),
// each MetricDirective (Namespace of 1-1024 characters, 1 or more dimension
// sets of at most 30 keys, at most 100 MetricDefinitions), each definition
// (Name, Unit from CloudWatch's units, StorageResolution 1 or 60), no member
// the specification does not define in those objects, and the target
// members: every dimension key a string of 1-1024 characters on the root,
// every metric a number or an array of at most 100 numbers on the root.
func Check(line []byte) (Doc, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		return Doc{}, fmt.Errorf("the line is not one JSON object: %w", err)
	}
	if dec.More() {
		return Doc{}, fmt.Errorf("data after the JSON object")
	}
	meta, ok := root["_aws"].(map[string]any)
	if !ok {
		return Doc{}, fmt.Errorf("_aws is not an object")
	}
	if err := onlyMembers(meta, "_aws", "Timestamp", "CloudWatchMetrics"); err != nil {
		return Doc{}, err
	}
	ts, ok := meta["Timestamp"].(json.Number)
	ms, err := ts.Int64()
	if !ok || err != nil {
		return Doc{}, fmt.Errorf("_aws.Timestamp %v is not an integer of milliseconds", meta["Timestamp"])
	}
	directives, ok := meta["CloudWatchMetrics"].([]any)
	if !ok {
		return Doc{}, fmt.Errorf("_aws.CloudWatchMetrics is not an array")
	}
	doc := Doc{Timestamp: time.UnixMilli(ms), Dims: map[string]string{}, Units: map[string]string{}, Values: map[string][]float64{}}
	for i, raw := range directives {
		d, ok := raw.(map[string]any)
		if !ok {
			return Doc{}, fmt.Errorf("CloudWatchMetrics[%d] is not an object", i)
		}
		if err := onlyMembers(d, "MetricDirective", "Namespace", "Dimensions", "Metrics"); err != nil {
			return Doc{}, err
		}
		ns, _ := d["Namespace"].(string)
		if len(ns) < 1 || len(ns) > 1024 {
			return Doc{}, fmt.Errorf("Namespace %v: want a string of 1-1024 characters", d["Namespace"])
		}
		if i == 0 {
			doc.Namespace = ns
		}
		dir := Directive{Namespace: ns}
		sets, ok := d["Dimensions"].([]any)
		if !ok || len(sets) < 1 {
			return Doc{}, fmt.Errorf("Dimensions %v: want an array of at least one DimensionSet", d["Dimensions"])
		}
		for _, rawSet := range sets {
			set, ok := rawSet.([]any)
			if !ok || len(set) > 30 {
				return Doc{}, fmt.Errorf("DimensionSet %v: want an array of at most 30 keys", rawSet)
			}
			var keys []string
			for _, k := range set {
				key, _ := k.(string)
				if len(key) < 1 || len(key) > 250 {
					return Doc{}, fmt.Errorf("dimension key %v: want a string of 1-250 characters", k)
				}
				value, ok := root[key].(string)
				if !ok || value == "" || len(value) > 1024 {
					return Doc{}, fmt.Errorf("dimension %s: its target member %v is not a string of 1-1024 characters", key, root[key])
				}
				keys = append(keys, key)
				doc.Dims[key] = value
			}
			dir.Sets = append(dir.Sets, keys)
		}
		defs, ok := d["Metrics"].([]any)
		if !ok || len(defs) > 100 {
			return Doc{}, fmt.Errorf("Metrics: want an array of at most 100 MetricDefinitions, got %d", len(defs))
		}
		for _, rawDef := range defs {
			def, ok := rawDef.(map[string]any)
			if !ok {
				return Doc{}, fmt.Errorf("MetricDefinition %v is not an object", rawDef)
			}
			if err := onlyMembers(def, "MetricDefinition", "Name", "Unit", "StorageResolution"); err != nil {
				return Doc{}, err
			}
			name, _ := def["Name"].(string)
			if len(name) < 1 || len(name) > 1024 {
				return Doc{}, fmt.Errorf("metric Name %v: want a string of 1-1024 characters", def["Name"])
			}
			if u, present := def["Unit"]; present {
				unit, _ := u.(string)
				if !unitPattern.MatchString(unit) {
					return Doc{}, fmt.Errorf("metric %s: Unit %v is not a CloudWatch unit", name, u)
				}
				doc.Units[name] = unit
			}
			if r, present := def["StorageResolution"]; present && r != json.Number("1") && r != json.Number("60") {
				return Doc{}, fmt.Errorf("metric %s: StorageResolution %v, want 1 or 60", name, r)
			}
			values, err := metricValues(root[name])
			if err != nil {
				return Doc{}, fmt.Errorf("metric %s: %w", name, err)
			}
			doc.Values[name] = values
			dir.Metrics = append(dir.Metrics, name)
		}
		doc.Directives = append(doc.Directives, dir)
	}
	return doc, nil
}

// metricValues reads a metric's target member: a number, or an array of at
// most 100 numbers.
func metricValues(v any) ([]float64, error) {
	number := func(v any) (float64, error) {
		n, ok := v.(json.Number)
		if !ok {
			return 0, fmt.Errorf("target member %v is not a number", v)
		}
		return n.Float64()
	}
	list, isList := v.([]any)
	if !isList {
		f, err := number(v)
		return []float64{f}, err
	}
	if len(list) > 100 {
		return nil, fmt.Errorf("target member has %d values, at most 100 allowed", len(list))
	}
	out := make([]float64, len(list))
	for i, e := range list {
		f, err := number(e)
		if err != nil {
			return nil, err
		}
		out[i] = f
	}
	return out, nil
}

func onlyMembers(obj map[string]any, what string, allowed ...string) error {
	for k := range obj {
		if !slices.Contains(allowed, k) {
			return fmt.Errorf("%s has the member %q, which the specification does not define", what, k)
		}
	}
	return nil
}

// Series is one CloudWatch metric: a name and its dimensions' values.
type Series struct {
	Name string
	Dims map[string]string
}

// Of is the series of figure f of a function: by the function alone, or,
// with value, by the function and that value of f's dimension (a reason,
// an event type). A figure split by path takes its path: see OfPath.
func Of(function string, f metrics.Figure, value ...string) Series {
	s := Series{Name: f.Name, Dims: map[string]string{metrics.DimFunction: function}}
	if len(value) > 0 {
		s.Dims[f.Dimension] = value[0]
	}
	return s
}

// OfPath is Of for a figure split by path (metrics.Figure.ByPath): its
// series by the function and path, and with value by that value too.
func OfPath(function, path string, f metrics.Figure, value ...string) Series {
	s := Of(function, f, value...)
	s.Dims[metrics.DimPath] = path
	return s
}

// Want is the sum a series must add up to.
type Want struct {
	Series Series
	Sum    float64
}

// ExpectSums fails t for each series whose Sum over docs is not the one wanted.
func ExpectSums(t testing.TB, docs []Doc, wants ...Want) {
	t.Helper()
	for _, w := range wants {
		if got := Sum(docs, w.Series); got != w.Sum {
			t.Errorf("%s %v = %v, want %v", w.Series.Name, w.Series.Dims, got, w.Sum)
		}
	}
}

// Sum adds up the values docs give the metric s, as CloudWatch's Sum
// statistic would (see Values).
func Sum(docs []Doc, s Series) float64 {
	total := 0.0
	for _, v := range Values(docs, s) {
		total += v
	}
	return total
}

// Values returns every value docs give the metric s: those of each datum
// Extract finds for s's namespace-less name and dimensions, in order.
func Values(docs []Doc, s Series) []float64 {
	want := Datum{Name: s.Name, Dims: s.Dims}.key()
	var out []float64
	for _, d := range Extract(docs) {
		if d.key() == want {
			out = append(out, d.Values...)
		}
	}
	return out
}

// Datum is what CloudWatch extracts from one document for one metric of
// one directive and one of its dimension sets: the values of one series.
type Datum struct {
	Namespace string
	Name      string
	// Dims are the set's dimensions with the document's values.
	Dims   map[string]string
	Values []float64
}

// key names the datum's metric and dimensions (not its namespace): the
// same for the data of one series.
func (d Datum) key() string {
	var b strings.Builder
	b.WriteString(d.Name)
	for _, k := range slices.Sorted(maps.Keys(d.Dims)) {
		fmt.Fprintf(&b, " %s=%s", k, d.Dims[k])
	}
	return b.String()
}

// Extract returns what CloudWatch takes from docs, as the specification
// says it does: every metric of a directive under each dimension set of
// that directive (not of the document's other directives), with the values
// of those dimensions and of the metric on the document's root.
func Extract(docs []Doc) []Datum {
	var out []Datum
	for _, doc := range docs {
		for _, dir := range doc.Directives {
			for _, set := range dir.Sets {
				dims := make(map[string]string, len(set))
				for _, k := range set {
					dims[k] = doc.Dims[k]
				}
				for _, name := range dir.Metrics {
					out = append(out, Datum{Namespace: dir.Namespace, Name: name, Dims: dims, Values: doc.Values[name]})
				}
			}
		}
	}
	return out
}

// SeriesValues returns each series the data write to, by namespace, name and
// dimensions ("ns Name Dim=value ..."), with all of its values, sorted:
// what CloudWatch holds once it has ingested them, whatever the documents
// they came in. A series no datum writes to is absent.
func SeriesValues(data []Datum) map[string][]float64 {
	out := map[string][]float64{}
	for _, d := range data {
		k := d.Namespace + " " + d.key()
		out[k] = append(out[k], d.Values...)
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}
