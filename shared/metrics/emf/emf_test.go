package emf_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/metrics"
	"github.com/wsnotify/wsnotify/shared/metrics/emf"
	"github.com/wsnotify/wsnotify/shared/metrics/emf/emftest"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/push/apigw"
)

var _ apigw.Metrics = (*emf.Recorder)(nil)

const function = "wsnotify-JobEventsFunction-Ab12Cd34"

func newRecorder(t *testing.T) (*emf.Recorder, *bytes.Buffer) {
	t.Helper()
	out := &bytes.Buffer{}
	r, err := emf.New(out, "wsnotify-test", function)
	if err != nil {
		t.Fatal(err)
	}
	return r, out
}

// fn is the series of a figure of the function (see emftest.Of).
func fn(f metrics.Figure, value ...string) emftest.Series { return emftest.Of(function, f, value...) }

// byPath is the series of a figure split by path (see emftest.OfPath).
func byPath(path string, f metrics.Figure, value ...string) emftest.Series {
	return emftest.OfPath(function, path, f, value...)
}

func TestFlushWritesEachFigureAsCloudWatchWouldCountIt(t *testing.T) {
	r, out := newRecorder(t)
	before := time.Now()
	r.ConnectAccepted(0)
	r.ConnectAccepted(41)
	for _, code := range []notify.Code{notify.CodeUnauthorized, notify.CodeUnauthorized, notify.CodeConflict,
		notify.CodeRateLimited, notify.CodeForbidden, notify.CodeInvalid, notify.CodeInternal} {
		r.ConnectRefused(code)
	}
	r.Disconnected()
	r.Published(notify.Publication{Type: event.TypeJobProgress, Path: notify.PathQueue, Bytes: 300, Duration: 1500 * time.Microsecond,
		Result: notify.Result{Delivered: 3, Gone: 1, Connecting: 1, Failed: 2}})
	r.Published(notify.Publication{Type: event.TypeJobProgress, Path: notify.PathQueue, Bytes: 100, Duration: 2 * time.Millisecond,
		Result: notify.Result{Delivered: 1}})
	r.Published(notify.Publication{Type: event.TypeFileUploaded, Path: notify.PathQueue, Duration: time.Millisecond})
	r.PushAttempts(2, 3)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	after := time.Now()

	docs := emftest.Parse(t, out.String())
	// One document per refusal reason seen (a root member has one value),
	// the first of them with everything else: both event types ride in
	// two of them.
	if len(docs) != 6 {
		t.Fatalf("%d lines, want 6 (one per reason seen, the rest riding along):\n%s", len(docs), out)
	}
	for _, d := range docs {
		if d.Namespace != "wsnotify-test" || d.Dims[metrics.DimFunction] != function {
			t.Errorf("namespace %q, function %q", d.Namespace, d.Dims[metrics.DimFunction])
		}
		if d.Timestamp.Before(before.Truncate(time.Millisecond)) || d.Timestamp.After(after) {
			t.Errorf("timestamp %v outside the flush (%v to %v)", d.Timestamp, before, after)
		}
		for name, unit := range d.Units {
			if want := unitOf(t, name); unit != string(want) {
				t.Errorf("%s: unit %s, want %s", name, unit, want)
			}
		}
	}
	emftest.ExpectSums(t, docs,
		emftest.Want{Series: fn(metrics.ConnectsAccepted), Sum: 2},
		emftest.Want{Series: fn(metrics.ConnectsRefused), Sum: 7},
		emftest.Want{Series: fn(metrics.ConnectsRefused, "unauthorized"), Sum: 2},
		emftest.Want{Series: fn(metrics.ConnectsRefused, "conflict"), Sum: 1},
		emftest.Want{Series: fn(metrics.ConnectsRefused, "rate_limited"), Sum: 1},
		emftest.Want{Series: fn(metrics.ConnectsRefused, "forbidden"), Sum: 1},
		emftest.Want{Series: fn(metrics.ConnectsRefused, "invalid"), Sum: 1},
		emftest.Want{Series: fn(metrics.ConnectsRefused, "internal"), Sum: 1},
		emftest.Want{Series: fn(metrics.Disconnects), Sum: 1},
		emftest.Want{Series: byPath("queue", metrics.EventsPublished), Sum: 3},
		emftest.Want{Series: byPath("queue", metrics.EventsPublished, "job_progress"), Sum: 2},
		emftest.Want{Series: byPath("queue", metrics.EventsPublished, "file_uploaded"), Sum: 1},
		// Declared with its path only: the function alone would be a
		// metric more, the same in the cloud.
		emftest.Want{Series: fn(metrics.EventsPublished), Sum: 0},
		emftest.Want{Series: fn(metrics.EventsPublished, "job_progress"), Sum: 0},
		emftest.Want{Series: fn(metrics.Deliveries), Sum: 4},
		emftest.Want{Series: fn(metrics.PushesGone), Sum: 1},
		emftest.Want{Series: fn(metrics.PushesFailed), Sum: 2},
		emftest.Want{Series: fn(metrics.BytesPushed), Sum: 400},
		emftest.Want{Series: fn(metrics.PushesThrottled), Sum: 2},
		emftest.Want{Series: fn(metrics.PushRetries), Sum: 3},
	)
	if got := emftest.Values(docs, fn(metrics.FanoutDuration)); fmt.Sprint(got) != "[1.5 2 1]" {
		t.Errorf("FanoutDuration values %v, want [1.5 2 1] (milliseconds, one per publish)", got)
	}
	if got := emftest.Values(docs, fn(metrics.OwnerConnections)); fmt.Sprint(got) != "[0 41]" {
		t.Errorf("OwnerConnections values %v, want [0 41]", got)
	}

	out.Reset()
	if err := r.Flush(); err != nil || out.Len() != 0 {
		t.Fatalf("second flush wrote %q (%v): a flush must forget what it wrote", out, err)
	}
}

func unitOf(t *testing.T, name string) metrics.Unit {
	for _, f := range metrics.Figures() {
		if f.Name == name {
			return f.Unit
		}
	}
	t.Fatalf("no figure %s", name)
	return ""
}

func TestNoOwnerEverReachesTheOutput(t *testing.T) {
	// The interface gives the recorder nothing to leak, but a dimension
	// value could still come from an event: only fixed lists may appear.
	r, out := newRecorder(t)
	r.ConnectRefused(notify.Code("acct_42 is not a code")) // unknown codes count as internal
	r.Published(notify.Publication{Type: event.TypeError})
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, d := range emftest.Parse(t, out.String()) {
		for k, v := range d.Dims {
			if k != metrics.DimFunction && k != metrics.DimReason && k != metrics.DimType && k != metrics.DimPath {
				t.Errorf("dimension %s = %s is not one of the four", k, v)
			}
		}
	}
	if strings.Contains(out.String(), "acct_42") {
		t.Fatalf("an unknown code's text reached the output:\n%s", out)
	}
	if got := emftest.Sum(emftest.Parse(t, out.String()), fn(metrics.ConnectsRefused, "internal")); got != 1 {
		t.Fatalf("the unknown code counted %v times as internal, want 1", got)
	}
}

func TestWriteKeepsToTheLimitsOfOneDocument(t *testing.T) {
	var ms []emf.Metric
	for i := range 250 {
		ms = append(ms, emf.Metric{Name: fmt.Sprintf("M%03d", i), Unit: metrics.Count, Values: []float64{float64(i)}})
	}
	long := make([]float64, 250)
	for i := range long {
		long[i] = float64(i)
	}
	ms = append(ms, emf.Metric{Name: "Long", Unit: metrics.Milliseconds, Values: long})
	out := &bytes.Buffer{}
	dims := []emf.Dimension{{metrics.DimFunction, function}}
	if err := emf.Write(out, time.Now(), "ns", []emf.Group{{Dims: dims, Sets: [][]string{{metrics.DimFunction}}, Metrics: ms}}); err != nil {
		t.Fatal(err)
	}
	docs := emftest.Parse(t, out.String()) // each directive at most 100 metrics of at most 100 values
	// 251 metrics: 3 lines; then Long's values 100-199 and 200-249: 2 more.
	if len(docs) != 5 {
		t.Fatalf("%d lines, want 5", len(docs))
	}
	for i, d := range docs {
		// The specification's limit is the directive's; a document keeps
		// to it too (it costs this service no line).
		if len(d.Values) > emf.MaxMetrics {
			t.Errorf("line %d holds %d metrics", i+1, len(d.Values))
		}
	}
	for _, m := range ms {
		got := emftest.Values(docs, emftest.Series{Name: m.Name, Dims: map[string]string{metrics.DimFunction: function}})
		if fmt.Sprint(got) != fmt.Sprint(m.Values) {
			t.Fatalf("%s: values %v come back as %v", m.Name, m.Values, got)
		}
	}
}

func TestCheckRefusesWhatTheSpecificationForbids(t *testing.T) {
	const good = `{"_aws":{"Timestamp":1764151530123,"CloudWatchMetrics":[{"Namespace":"ns","Dimensions":[["F"]],"Metrics":[{"Name":"M","Unit":"Count"}]}]},"F":"f","M":1}`
	if _, err := emftest.Check([]byte(good)); err != nil {
		t.Fatalf("the specification's shape is refused: %v", err)
	}
	many := func(n int, item string) string {
		items := make([]string, n)
		for i := range items {
			items[i] = fmt.Sprintf(item, i)
		}
		return strings.Join(items, ",")
	}
	bad := map[string]string{
		"not JSON":                    `{"_aws":`,
		"no _aws":                     `{"M":1}`,
		"a fractional timestamp":      strings.Replace(good, "1764151530123", "1764151530.5", 1),
		"no CloudWatchMetrics":        `{"_aws":{"Timestamp":1}}`,
		"an unknown metadata member":  strings.Replace(good, `"Timestamp"`, `"Extra":1,"Timestamp"`, 1),
		"an empty namespace":          strings.Replace(good, `"Namespace":"ns"`, `"Namespace":""`, 1),
		"no dimension set":            strings.Replace(good, `[["F"]]`, `[]`, 1),
		"a dimension without target":  strings.Replace(good, `,"F":"f"`, ``, 1),
		"a numeric dimension":         strings.Replace(good, `"F":"f"`, `"F":3`, 1),
		"31 dimension keys":           strings.Replace(good, `[["F"]]`, `[[`+many(31, `"F"`)+`]]`, 1),
		"a metric without target":     strings.Replace(good, `,"M":1`, ``, 1),
		"a metric that is a string":   strings.Replace(good, `"M":1`, `"M":"1"`, 1),
		"101 values":                  strings.Replace(good, `"M":1`, `"M":[`+many(101, "%d")+`]`, 1),
		"an unknown unit":             strings.Replace(good, `"Unit":"Count"`, `"Unit":"Things"`, 1),
		"a storage resolution of 5":   strings.Replace(good, `"Unit":"Count"`, `"Unit":"Count","StorageResolution":5`, 1),
		"an unknown definition field": strings.Replace(good, `"Unit":"Count"`, `"Unit":"Count","Value":1`, 1),
		"101 metrics": `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"ns","Dimensions":[[]],"Metrics":[` +
			many(101, `{"Name":"M%d"}`) + `]}]},` + many(101, `"M%d":1`) + `}`,
		"data after the object": good + ` {}`,
	}
	for name, line := range bad {
		if _, err := emftest.Check([]byte(line)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestNewRefusesAnUnusableNamespaceOrFunction(t *testing.T) {
	for _, c := range []struct{ ns, fn string }{{"", "f"}, {strings.Repeat("n", 256), "f"}, {"AWS/Lambda", "f"}, {" ns", "f"}, {"ns\n", "f"}, {"ns", ""}, {"ns", " "}} {
		if _, err := emf.New(&bytes.Buffer{}, c.ns, c.fn); err == nil {
			t.Errorf("New(%.20q, %q) accepted", c.ns, c.fn)
		}
	}
}

func TestConcurrentRecordingLosesNothing(t *testing.T) {
	r, out := newRecorder(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				r.Published(notify.Publication{Type: event.TypeJobComplete, Result: notify.Result{Delivered: 2}})
				r.ConnectAccepted(1)
			}
		})
	}
	wg.Wait()
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	docs := emftest.Parse(t, out.String())
	if got := emftest.Sum(docs, fn(metrics.Deliveries)); got != 1600 {
		t.Fatalf("Deliveries %v, want 1600", got)
	}
	if got := len(emftest.Values(docs, fn(metrics.OwnerConnections))); got != 800 {
		t.Fatalf("%d OwnerConnections values, want 800 (over several lines of at most 100)", got)
	}
}

func TestPublishesAreCountedByPathAtNoMetricMorePerFunction(t *testing.T) {
	r, out := newRecorder(t)
	for _, p := range []notify.Path{notify.PathAPI, notify.PathAPI, notify.PathQueue, notify.PathS3, "", "acct_42"} {
		r.Published(notify.Publication{Type: event.TypeJobComplete, Path: p})
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	docs := emftest.Parse(t, out.String())
	for path, want := range map[string]float64{"api": 2, "queue": 1, "s3": 1, metrics.PathOther: 2} {
		emftest.ExpectSums(t, docs,
			emftest.Want{Series: byPath(path, metrics.EventsPublished), Sum: want},
			emftest.Want{Series: byPath(path, metrics.EventsPublished, "job_complete"), Sum: want})
	}
	if strings.Contains(out.String(), "acct_42") {
		t.Fatalf("an unknown path's text reached the output:\n%s", out)
	}
	// The sets EventsPublished is declared in: by function, path and type,
	// and by function and path. A function that publishes by one path (as
	// each does in the cloud) writes one metric per type seen and one
	// more, as many as it did without the path.
	for _, d := range docs {
		for _, dir := range d.Directives {
			if !slices.Contains(dir.Metrics, metrics.EventsPublished.Name) {
				continue
			}
			if got := fmt.Sprint(dir.Sets); got != "[[FunctionName Path Type] [FunctionName Path]]" {
				t.Errorf("EventsPublished declared in the dimension sets %s", got)
			}
		}
	}
}
