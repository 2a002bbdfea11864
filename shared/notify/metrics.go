package notify

import (
	"context"
	"time"

	"github.com/wsnotify/wsnotify/shared/event"
)

// Metrics receives the figures the core produces: connects accepted and
// refused, disconnects, and what each publish did. Two implementations:
// shared/metrics/emf writes them as CloudWatch metrics from the Lambda
// functions, shared/metrics/prom keeps them as Prometheus collectors in
// local mode.
//
// Calls come from concurrent requests and must be cheap: Published is called
// once per publish, never once per connection. No method is given an owner,
// client or connection id: figures are counted by event type and refusal
// code only, which keeps their number of series fixed and no one's identity
// in them.
type Metrics interface {
	// ConnectAccepted counts a registered connection. ownerConnections is
	// how many live connections its owner held before it, as the per-owner
	// cap counted them.
	ConnectAccepted(ownerConnections int)
	// ConnectRefused counts a refused connect by its code; CodeInternal is
	// a connect the service failed (a store error).
	ConnectRefused(code Code)
	// Disconnected counts a disconnect that removed its connection's record.
	Disconnected()
	// Published counts one publish that reached its fan-out.
	Published(p Publication)
}

// Publication is what one publish did, for Metrics.
type Publication struct {
	Type event.Type
	// Path is where the publish came from (PathOf its context).
	Path Path
	// Result is the outcome of its pushes (Delivered, Gone, Connecting, Failed).
	Result Result
	// Bytes is what was delivered: the message's size times Result.Delivered.
	Bytes int64
	// Duration is the publish from its start to its last push: history,
	// the owner's connections and the fan-out.
	Duration time.Duration
}

// Path is where a publish came from: the publish API, the job queue or an
// S3 upload. Metrics count publishes by it; an adapter marks its requests'
// contexts with WithPath before they reach the Notifier.
type Path string

// The paths a publish comes by.
const (
	// PathAPI is the HTTP publish API (shared/publishapi, PublishFunction).
	PathAPI Path = "api"
	// PathQueue is the job queue (JobEventsFunction).
	PathQueue Path = "queue"
	// PathS3 is an upload to the bucket (S3UploadFunction).
	PathS3 Path = "s3"
)

type pathKey struct{}

// WithPath returns ctx marked with the path its publishes come by.
func WithPath(ctx context.Context, p Path) context.Context {
	return context.WithValue(ctx, pathKey{}, p)
}

// PathOf returns the path WithPath marked ctx with, "" if none.
func PathOf(ctx context.Context) Path {
	p, _ := ctx.Value(pathKey{}).(Path)
	return p
}

// noMetrics is the Metrics of a Notifier configured without any.
type noMetrics struct{}

func (noMetrics) ConnectAccepted(int)   {}
func (noMetrics) ConnectRefused(Code)   {}
func (noMetrics) Disconnected()         {}
func (noMetrics) Published(Publication) {}
