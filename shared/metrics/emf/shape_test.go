package emf_test

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/metrics"
	"github.com/wsnotify/wsnotify/shared/metrics/emf"
	"github.com/wsnotify/wsnotify/shared/metrics/emf/emftest"
	"github.com/wsnotify/wsnotify/shared/notify"
)

// realisticFunction is a deployed function's name: stack, logical id and
// CloudFormation's suffix, some 45 characters.
const realisticFunction = "wsnotify-prod-JobEventsFunction-AbCdEfGhIjKl"

// lonePublish records what one invocation that publishes one event to one
// connection records: the event (its one push took one attempt, which the
// pusher does not report).
func lonePublish(r *emf.Recorder) {
	r.Published(notify.Publication{Type: event.TypeJobProgress, Path: notify.PathQueue, Bytes: 187,
		Duration: 12345678 * time.Nanosecond, Result: notify.Result{Delivered: 1}})
}

// busyInvocation records every figure, several values of each dimension
// (two refusal reasons, three event types by two paths), counters at zero
// and a distribution of more values than one metric may hold.
func busyInvocation(r *emf.Recorder) {
	r.ConnectAccepted(0)
	r.ConnectAccepted(7)
	r.ConnectRefused(notify.CodeUnauthorized)
	r.ConnectRefused(notify.CodeRateLimited)
	r.ConnectRefused(notify.CodeUnauthorized)
	r.Disconnected()
	types := []event.Type{event.TypeJobProgress, event.TypeJobComplete, event.TypeError}
	for i := range 230 {
		path := notify.PathQueue
		if i%5 == 0 {
			path = notify.PathAPI
		}
		res := notify.Result{Delivered: i % 3}
		if i%50 == 0 {
			res.Gone = 1
		}
		if i == 77 {
			res.Failed = 2
		}
		r.Published(notify.Publication{Type: types[i%3], Path: path, Bytes: int64(100 * res.Delivered),
			Duration: time.Duration(i) * 250 * time.Microsecond, Result: res})
		if i%90 == 89 {
			r.PushAttempts(1, 0) // throttled once, given up: no retry to count
		}
	}
}

// lonePublishBound is the most bytes a lone publish may write with
// realisticFunction, newline included: 576 measured (the writer before
// issue 21 wrote 808, in two lines: testdata/before-lone-publish.jsonl).
const lonePublishBound = 576

func flushed(t *testing.T, record func(*emf.Recorder)) string {
	t.Helper()
	out := &bytes.Buffer{}
	r, err := emf.New(out, "wsnotify", realisticFunction)
	if err != nil {
		t.Fatal(err)
	}
	record(r)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestALonePublishWritesOneSmallLine(t *testing.T) {
	out := flushed(t, lonePublish)
	docs := emftest.Parse(t, out)
	if len(docs) != 1 || strings.Count(out, "\n") != 1 {
		t.Fatalf("%d documents in %d lines, want 1 (log bytes are billed):\n%s", len(docs), strings.Count(out, "\n"), out)
	}
	if len(out) > lonePublishBound {
		t.Errorf("a lone publish wrote %d bytes, want at most %d:\n%s", len(out), lonePublishBound, out)
	}
	of := func(f metrics.Figure, value ...string) emftest.Series {
		return emftest.Of(realisticFunction, f, value...)
	}
	emftest.ExpectSums(t, docs,
		emftest.Want{Series: emftest.OfPath(realisticFunction, "queue", metrics.EventsPublished, "job_progress"), Sum: 1},
		emftest.Want{Series: emftest.OfPath(realisticFunction, "queue", metrics.EventsPublished), Sum: 1},
		emftest.Want{Series: of(metrics.Deliveries), Sum: 1},
		emftest.Want{Series: of(metrics.BytesPushed), Sum: 187})
	if got := emftest.Values(docs, of(metrics.FanoutDuration)); fmt.Sprint(got) != "[12.346]" {
		t.Errorf("FanoutDuration %v, want [12.346] (milliseconds to the microsecond)", got)
	}
	for _, f := range []metrics.Figure{metrics.PushesGone, metrics.PushesFailed, metrics.PushesThrottled, metrics.PushRetries} {
		if strings.Contains(out, `"`+f.Name+`"`) {
			t.Errorf("%s is written though it counted nothing:\n%s", f.Name, out)
		}
	}
}

func TestCountersAtZeroAreLeftOutDistributionsKeepTheirZeros(t *testing.T) {
	out := flushed(t, func(r *emf.Recorder) {
		r.ConnectAccepted(0)
		r.PushAttempts(0, 0)
		// A publish to an owner with no connection: nothing delivered,
		// no byte pushed, done in under half a microsecond.
		r.Published(notify.Publication{Type: event.TypeJobComplete, Path: notify.PathAPI, Duration: 400 * time.Nanosecond})
	})
	docs := emftest.Parse(t, out)
	for _, f := range []metrics.Figure{metrics.Deliveries, metrics.BytesPushed, metrics.PushesGone, metrics.PushesFailed,
		metrics.PushesThrottled, metrics.PushRetries, metrics.Disconnects, metrics.ConnectsRefused} {
		for _, d := range docs {
			if _, ok := d.Values[f.Name]; ok {
				t.Errorf("%s written with nothing counted:\n%s", f.Name, out)
			}
		}
	}
	of := func(f metrics.Figure) emftest.Series { return emftest.Of(realisticFunction, f) }
	if got := emftest.Values(docs, of(metrics.FanoutDuration)); fmt.Sprint(got) != "[0]" {
		t.Errorf("FanoutDuration %v, want [0]: an observation of 0 is a value", got)
	}
	if got := emftest.Values(docs, of(metrics.OwnerConnections)); fmt.Sprint(got) != "[0]" {
		t.Errorf("OwnerConnections %v, want [0]: an owner with no connection yet is a value", got)
	}
	// EventsPublished is never 0: a series of it exists only for a
	// publish, which counts 1.
	emftest.ExpectSums(t, docs,
		emftest.Want{Series: emftest.OfPath(realisticFunction, "api", metrics.EventsPublished, "job_complete"), Sum: 1},
		emftest.Want{Series: of(metrics.ConnectsAccepted), Sum: 1})
}

// TestCloudWatchGetsWhatItGotBefore holds the writer to what the writer
// before issue 21 (commit 6a2b0af) wrote for the same figures, kept in
// testdata/before-*.jsonl: CloudWatch must extract the same series with the
// same values, but for the counters at 0, now left out, and for the
// durations, now to the microsecond. Only the documents are fewer.
func TestCloudWatchGetsWhatItGotBefore(t *testing.T) {
	distribution := map[string]bool{}
	for _, f := range metrics.Figures() {
		distribution[f.Name] = f.Distribution
	}
	for _, c := range []struct {
		name      string
		record    func(*emf.Recorder)
		documents int
	}{
		{"lone-publish", lonePublish, 1},
		// As many documents as the figure that needs the most: the six
		// series of EventsPublished (three types by two paths); the two
		// reasons and the 230 fan-out durations (three of at most 100)
		// ride in them.
		{"busy-invocation", busyInvocation, 6},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, err := os.ReadFile(filepath.Join("testdata", "before-"+c.name+".jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			want := emftest.SeriesValues(emftest.Extract(emftest.Parse(t, string(before))))
			for k, values := range want {
				name := strings.Fields(k)[1]
				values = slices.DeleteFunc(values, func(v float64) bool { return v == 0 && !distribution[name] })
				if name == metrics.FanoutDuration.Name {
					for i, v := range values {
						values[i] = math.Round(v*1000) / 1000
					}
				}
				if want[k] = values; len(values) == 0 {
					delete(want, k)
				}
			}
			out := flushed(t, c.record)
			docs := emftest.Parse(t, out)
			got := emftest.SeriesValues(emftest.Extract(docs))
			if !reflect.DeepEqual(got, want) {
				for _, k := range slices.Sorted(maps.Keys(want)) {
					if !slices.Equal(got[k], want[k]) {
						t.Errorf("%s: %v, want %v", k, got[k], want[k])
					}
				}
				for k := range got {
					if _, ok := want[k]; !ok {
						t.Errorf("%s: %v, a series the writer did not write before", k, got[k])
					}
				}
			}
			if len(docs) != c.documents {
				t.Errorf("%d documents, want %d (before: %d):\n%s", len(docs), c.documents, strings.Count(string(before), "\n"), out)
			}
		})
	}
}

func TestWriteRefusesAMetricNamedAsItsDimension(t *testing.T) {
	g := emf.Group{Dims: []emf.Dimension{{"Type", "x"}}, Sets: [][]string{{"Type"}},
		Metrics: []emf.Metric{{Name: "Type", Unit: metrics.Count, Values: []float64{1}}}}
	if err := emf.Write(&bytes.Buffer{}, time.Now(), "ns", []emf.Group{g}); err == nil {
		t.Fatal("a metric and a dimension of one name were written: the root has one member of a name")
	}
}
