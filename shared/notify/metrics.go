package notify

import (
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
	// Result is the outcome of its pushes (Delivered, Gone, Connecting, Failed).
	Result Result
	// Bytes is what was delivered: the message's size times Result.Delivered.
	Bytes int64
	// Duration is the publish from its start to its last push: history,
	// the owner's connections and the fan-out.
	Duration time.Duration
}

// noMetrics is the Metrics of a Notifier configured without any.
type noMetrics struct{}

func (noMetrics) ConnectAccepted(int)   {}
func (noMetrics) ConnectRefused(Code)   {}
func (noMetrics) Disconnected()         {}
func (noMetrics) Published(Publication) {}
