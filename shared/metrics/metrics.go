// Package metrics names the figures the service reports, once for both places
// that report them: the Lambda functions write them as CloudWatch metrics in
// the Embedded Metric Format (package emf), and local mode keeps them as
// Prometheus collectors served at /metrics (package prom). Both implement
// notify.Metrics and apigw.Metrics from this one table, and template.yaml's
// dashboard and alarms are checked against it.
//
// No figure is split by owner, client or connection: those are unbounded
// (every series costs money in CloudWatch and memory in Prometheus) and
// they would put people's identities into a monitoring system. Figures are
// split by event type, refusal reason and publish path only, each a short
// fixed list; in the cloud also by function.
package metrics

import (
	"slices"

	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
)

// Unit is a CloudWatch unit (the Embedded Metric Format's Unit member).
type Unit string

// The units the figures use.
const (
	Count        Unit = "Count"
	Bytes        Unit = "Bytes"
	Milliseconds Unit = "Milliseconds"
)

// Dimensions that split a figure: the CloudWatch dimension names, and, lower
// case, the Prometheus label names.
const (
	// DimFunction is the Lambda function's name (CloudWatch only: local
	// mode is one process).
	DimFunction = "FunctionName"
	DimReason   = "Reason"
	DimType     = "Type"
	// DimPath is where a publish came from (notify.Path): api, queue, s3.
	DimPath = "Path"
)

// Figure is one number the service reports.
type Figure struct {
	// Name is the CloudWatch metric name.
	Name string
	// Prom is the Prometheus metric name.
	Prom string
	// Unit is the CloudWatch unit. Prometheus names carry their unit
	// (_seconds, _bytes) and take seconds where CloudWatch takes milliseconds.
	Unit Unit
	// Dimension splits the figure by refusal reason (DimReason) or event
	// type (DimType); "" for none.
	Dimension string
	// ByPath splits the figure by publish path too (DimPath, one of
	// PathNames), on top of its Dimension. In the cloud each publishing
	// function has one path, so the split adds no CloudWatch metric there:
	// the figure's series by FunctionName and Path are as many as by
	// FunctionName alone. Locally, one process serves every path.
	ByPath bool
	// Distribution keeps every value, for percentiles: CloudWatch gets the
	// values themselves, Prometheus a histogram. Other figures are sums.
	Distribution bool
	// Local marks a figure only local mode measures: it holds the
	// WebSockets itself. In the cloud API Gateway holds them and tells no
	// function how many are open (docs/operations.md, "Live connections").
	Local bool
	// Help says what is counted.
	Help string
}

// The figures.
var (
	ConnectsAccepted = Figure{Name: "ConnectsAccepted", Prom: "wsnotify_connects_accepted_total", Unit: Count,
		Help: "Connects accepted: connections registered by $connect."}
	ConnectsRefused = Figure{Name: "ConnectsRefused", Prom: "wsnotify_connects_refused_total", Unit: Count, Dimension: DimReason,
		Help: "Connects refused, by reason: unauthorized, conflict, rate_limited, forbidden, invalid, internal (the service failed)."}
	OwnerConnections = Figure{Name: "OwnerConnections", Prom: "wsnotify_owner_connections", Unit: Count, Distribution: true,
		Help: "Live connections the owner already held at each accepted connect, as the per-owner cap counts its records."}
	Disconnects = Figure{Name: "Disconnects", Prom: "wsnotify_disconnects_total", Unit: Count,
		Help: "Disconnects that removed their connection's record."}
	EventsPublished = Figure{Name: "EventsPublished", Prom: "wsnotify_events_published_total", Unit: Count, Dimension: DimType, ByPath: true,
		Help: "Events published to their owner's connections, by type and by the path they came by: api (the publish API), queue (the job queue), s3 (an upload)."}
	Deliveries = Figure{Name: "Deliveries", Prom: "wsnotify_deliveries_total", Unit: Count,
		Help: "Events pushed to a connection: accepted by the Management API, or queued for the socket in local mode."}
	PushesGone = Figure{Name: "PushesGone", Prom: "wsnotify_pushes_gone_total", Unit: Count,
		Help: "Pushes answered 410 Gone: the connection had closed, its record was removed."}
	PushesFailed = Figure{Name: "PushesFailed", Prom: "wsnotify_pushes_failed_total", Unit: Count,
		Help: "Pushes that failed otherwise: throttled past the retries, 5xx, deadline. The event is retried."}
	PushesThrottled = Figure{Name: "PushesThrottled", Prom: "wsnotify_pushes_throttled_total", Unit: Count,
		Help: "Push attempts the Management API answered 429 (throttled, or the client's buffer full)."}
	PushRetries = Figure{Name: "PushRetries", Prom: "wsnotify_push_retries_total", Unit: Count,
		Help: "Push attempts made again after a throttled or failed one."}
	FanoutDuration = Figure{Name: "FanoutDuration", Prom: "wsnotify_fanout_duration_seconds", Unit: Milliseconds, Distribution: true,
		Help: "Time of one publish, from the event to its last push: history, the owner's connections, the pushes."}
	BytesPushed = Figure{Name: "BytesPushed", Prom: "wsnotify_pushed_bytes_total", Unit: Bytes,
		Help: "Bytes of the events delivered."}
	LiveConnections = Figure{Name: "LiveConnections", Prom: "wsnotify_live_connections", Unit: Count, Local: true,
		Help: "WebSocket connections open now."}
	SlowConsumerCloses = Figure{Name: "SlowConsumerCloses", Prom: "wsnotify_slow_consumer_closes_total", Unit: Count, Local: true,
		Help: "Connections closed with 1013 because their client did not read fast enough to keep its queue from filling."}
)

// Figures returns every figure, in the order above.
func Figures() []Figure {
	return []Figure{ConnectsAccepted, ConnectsRefused, OwnerConnections, Disconnects, EventsPublished,
		Deliveries, PushesGone, PushesFailed, PushesThrottled, PushRetries, FanoutDuration, BytesPushed,
		LiveConnections, SlowConsumerCloses}
}

// reasons names each refusal code as a dimension value.
var reasons = []struct {
	code notify.Code
	name string
}{
	{notify.CodeUnauthorized, "unauthorized"},
	{notify.CodeConflict, "conflict"},
	{notify.CodeRateLimited, "rate_limited"},
	{notify.CodeForbidden, "forbidden"},
	{notify.CodeInvalid, "invalid"},
	{notify.CodeInternal, "internal"},
}

// Reason returns the refusal reason of a connect refused with code: one of
// Reasons. A code this table does not know counts as internal, so that no
// value from outside the list ever becomes a series.
func Reason(code notify.Code) string {
	for _, r := range reasons {
		if r.code == code {
			return r.name
		}
	}
	return Reason(notify.CodeInternal)
}

// Reasons returns every refusal reason.
func Reasons() []string {
	out := make([]string, len(reasons))
	for i, r := range reasons {
		out[i] = r.name
	}
	return out
}

// EventTypes returns every event type, the values of DimType.
func EventTypes() []event.Type {
	return []event.Type{event.TypeJobProgress, event.TypeJobComplete, event.TypeFileUploaded, event.TypeError}
}

// paths names each publish path as a dimension value.
var paths = []notify.Path{notify.PathAPI, notify.PathQueue, notify.PathS3}

// PathOther is the path of a publish whose context was marked with none
// (or one this table does not know): no value from outside the list
// becomes a series.
const PathOther = "other"

// PathName returns the dimension value of path p: one of PathNames, or
// PathOther.
func PathName(p notify.Path) string {
	if slices.Contains(paths, p) {
		return string(p)
	}
	return PathOther
}

// PathNames returns every publish path the service has: api, queue, s3.
func PathNames() []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = string(p)
	}
	return out
}
