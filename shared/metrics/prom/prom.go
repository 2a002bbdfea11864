// Package prom keeps the service's figures (package metrics) as Prometheus
// collectors, for local mode, which serves them at /metrics in the text
// format through the official client library.
//
// Every series exists from the start at zero (each refusal reason, each
// event type on each publish path), so a scrape before the first event already lists them all
// and a rate over a series that has never moved is 0, not absent.
package prom

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/metrics"
	"github.com/wsnotify/wsnotify/shared/notify"
)

// Metrics holds the figures as collectors. It implements notify.Metrics and
// apigw.Metrics and is safe for concurrent use.
type Metrics struct {
	connectsAccepted prometheus.Counter
	connectsRefused  map[string]prometheus.Counter // by reason
	ownerConnections prometheus.Histogram
	disconnects      prometheus.Counter
	published        map[publishKey]prometheus.Counter
	publishedVec     *prometheus.CounterVec // for a path outside metrics.PathNames
	deliveries       prometheus.Counter
	gone             prometheus.Counter
	failed           prometheus.Counter
	throttled        prometheus.Counter
	retries          prometheus.Counter
	fanout           prometheus.Histogram
	bytes            prometheus.Counter
}

var _ notify.Metrics = (*Metrics)(nil)

// publishKey is one series of EventsPublished: a path and an event type.
type publishKey struct {
	path string
	typ  event.Type
}

// Connections reports the WebSocket connections of the process: how many
// are open now, and how many were closed as slow consumers (hub.Stats).
type Connections func() (open int64, slowConsumerCloses uint64)

// New registers the figures with reg. conns, if not nil, gives the figures
// only a process that holds the connections knows (metrics.LiveConnections,
// metrics.SlowConsumerCloses), read at each scrape.
func New(reg prometheus.Registerer, conns Connections) (*Metrics, error) {
	counter := func(f metrics.Figure) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: f.Prom, Help: f.Help})
	}
	histogram := func(f metrics.Figure, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: f.Prom, Help: f.Help, Buckets: buckets})
	}
	m := &Metrics{
		connectsAccepted: counter(metrics.ConnectsAccepted),
		connectsRefused:  map[string]prometheus.Counter{},
		// 1 to 16,384: past the default per-owner cap of 10,000.
		ownerConnections: histogram(metrics.OwnerConnections, prometheus.ExponentialBuckets(1, 4, 8)),
		disconnects:      counter(metrics.Disconnects),
		published:        map[publishKey]prometheus.Counter{},
		deliveries:       counter(metrics.Deliveries),
		gone:             counter(metrics.PushesGone),
		failed:           counter(metrics.PushesFailed),
		throttled:        counter(metrics.PushesThrottled),
		retries:          counter(metrics.PushRetries),
		// 0.5 ms to 16 s: a publish to one connection up to a large fan-out.
		fanout: histogram(metrics.FanoutDuration, prometheus.ExponentialBuckets(0.0005, 2, 16)),
		bytes:  counter(metrics.BytesPushed),
	}
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metrics.ConnectsRefused.Prom, Help: metrics.ConnectsRefused.Help},
		[]string{strings.ToLower(metrics.ConnectsRefused.Dimension)})
	for _, r := range metrics.Reasons() {
		m.connectsRefused[r] = refused.WithLabelValues(r)
	}
	published := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metrics.EventsPublished.Prom, Help: metrics.EventsPublished.Help},
		[]string{strings.ToLower(metrics.DimPath), strings.ToLower(metrics.EventsPublished.Dimension)})
	m.publishedVec = published
	for _, p := range metrics.PathNames() {
		for _, t := range metrics.EventTypes() {
			m.published[publishKey{p, t}] = published.WithLabelValues(p, string(t))
		}
	}
	collectors := []prometheus.Collector{m.connectsAccepted, refused, m.ownerConnections, m.disconnects, published,
		m.deliveries, m.gone, m.failed, m.throttled, m.retries, m.fanout, m.bytes}
	if conns != nil {
		collectors = append(collectors,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: metrics.LiveConnections.Prom, Help: metrics.LiveConnections.Help},
				func() float64 { open, _ := conns(); return float64(open) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: metrics.SlowConsumerCloses.Prom, Help: metrics.SlowConsumerCloses.Help},
				func() float64 { _, slow := conns(); return float64(slow) }))
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// ConnectAccepted implements notify.Metrics.
func (m *Metrics) ConnectAccepted(ownerConnections int) {
	m.connectsAccepted.Inc()
	m.ownerConnections.Observe(float64(ownerConnections))
}

// ConnectRefused implements notify.Metrics.
func (m *Metrics) ConnectRefused(code notify.Code) {
	m.connectsRefused[metrics.Reason(code)].Inc()
}

// Disconnected implements notify.Metrics.
func (m *Metrics) Disconnected() { m.disconnects.Inc() }

// Published implements notify.Metrics.
func (m *Metrics) Published(p notify.Publication) {
	// Publish takes only valid events, whose types are all in the map; a
	// publish whose context named no path counts as PathOther.
	path := metrics.PathName(p.Path)
	if c, ok := m.published[publishKey{path, p.Type}]; ok {
		c.Inc()
	} else if path == metrics.PathOther && slices.Contains(metrics.EventTypes(), p.Type) {
		m.publishedVec.WithLabelValues(path, string(p.Type)).Inc()
	}
	m.deliveries.Add(float64(p.Result.Delivered))
	m.gone.Add(float64(p.Result.Gone))
	m.failed.Add(float64(p.Result.Failed))
	m.bytes.Add(float64(p.Bytes))
	m.fanout.Observe(p.Duration.Seconds())
}

// PushAttempts implements apigw.Metrics.
func (m *Metrics) PushAttempts(throttled, retried int) {
	m.throttled.Add(float64(throttled))
	m.retries.Add(float64(retried))
}

// Scrape is one reading of /metrics: each sample's value by its name and
// labels, written as the text format writes them, labels sorted:
// wsnotify_deliveries_total, wsnotify_connects_refused_total{reason="conflict"},
// wsnotify_fanout_duration_seconds_count.
type Scrape map[string]float64

// ParseText reads the Prometheus text format.
func ParseText(r io.Reader) (Scrape, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	s := Scrape{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				s[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				s[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				s[name+"_count"] = float64(m.GetHistogram().GetSampleCount())
				s[name+"_sum"] = m.GetHistogram().GetSampleSum()
			case m.Untyped != nil:
				s[key] = m.GetUntyped().GetValue()
			}
		}
	}
	return s, nil
}

// Get returns the value of f's sample, with its dimension's label set to
// value if given (metrics.Reason, an event type). For a figure split by
// path it is the sum over every path: see Path for one.
func (s Scrape) Get(f metrics.Figure, value ...string) float64 {
	if f.ByPath {
		total := 0.0
		for _, p := range append(metrics.PathNames(), metrics.PathOther) {
			total += s.Path(f, p, value...)
		}
		return total
	}
	key := f.Prom
	if len(value) > 0 {
		key += fmt.Sprintf("{%s=%q}", strings.ToLower(f.Dimension), value[0])
	}
	return s[key]
}

// Path returns the value of a figure split by path on one path
// (metrics.PathNames), of one value of its dimension if given, else summed
// over them.
func (s Scrape) Path(f metrics.Figure, path string, value ...string) float64 {
	pathLabel := fmt.Sprintf("%s=%q", strings.ToLower(metrics.DimPath), path)
	if len(value) > 0 {
		// The labels in the key are sorted: path before type.
		return s[fmt.Sprintf("%s{%s,%s=%q}", f.Prom, pathLabel, strings.ToLower(f.Dimension), value[0])]
	}
	total := 0.0
	for key, v := range s {
		if strings.HasPrefix(key, f.Prom+"{"+pathLabel+",") {
			total += v
		}
	}
	return total
}

// Count returns how many values a histogram figure (FanoutDuration,
// OwnerConnections) has observed.
func (s Scrape) Count(f metrics.Figure) float64 { return s[f.Prom+"_count"] }
