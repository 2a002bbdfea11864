// Package notifytest provides a recording notify.Pusher for tests.
package notifytest

import (
	"context"
	"fmt"
	"regexp"
	"sync"

	"github.com/wsnotify/wsnotify/shared/notify"
)

// Recorder is a notify.Pusher that records what it is asked to send. A
// connection marked gone answers notify.ErrGone, like API Gateway's 410.
type Recorder struct {
	mu   sync.Mutex
	sent map[string][]string
	gone map[string]bool
	// closed lists the connections CloseConnection closed, in order.
	closed []string
	// Fail, when set, is asked before each post; a non-nil error fails it.
	Fail func(connectionID string) error
}

var (
	_ notify.Pusher = (*Recorder)(nil)
	_ notify.Closer = (*Recorder)(nil)
)

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{sent: map[string][]string{}, gone: map[string]bool{}}
}

// Post implements notify.Pusher. Like the real pushers, it refuses a message
// over notify.MaxMessageBytes before anything is recorded.
func (r *Recorder) Post(_ context.Context, connectionID string, data []byte) error {
	if len(data) > notify.MaxMessageBytes {
		return fmt.Errorf("post %d bytes to %s: %w", len(data), connectionID, notify.ErrPayloadTooLarge)
	}
	if r.Fail != nil {
		if err := r.Fail(connectionID); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone[connectionID] {
		return fmt.Errorf("post to %s: %w", connectionID, notify.ErrGone)
	}
	r.sent[connectionID] = append(r.sent[connectionID], string(data))
	return nil
}

// Alive implements notify.Pusher.
func (r *Recorder) Alive(_ context.Context, connectionID string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.gone[connectionID], nil
}

// CloseConnection implements notify.Closer as the Management API's
// DeleteConnection: the connection is gone from then on. A connection gone
// already gives an error wrapping notify.ErrGone.
func (r *Recorder) CloseConnection(_ context.Context, connectionID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone[connectionID] {
		return fmt.Errorf("delete %s: %w", connectionID, notify.ErrGone)
	}
	r.gone[connectionID] = true
	r.closed = append(r.closed, connectionID)
	return nil
}

// Closed returns the connections CloseConnection closed, in order.
func (r *Recorder) Closed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.closed...)
}

// SetGone marks a connection gone.
func (r *Recorder) SetGone(connectionID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gone[connectionID] = true
}

// Sent returns the messages posted to a connection, in order.
func (r *Recorder) Sent(connectionID string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.sent[connectionID]...)
}

// Total returns the number of messages posted to all connections.
func (r *Recorder) Total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.sent {
		n += len(m)
	}
	return n
}

// stamp matches the fields event.Stamp appends to a published event.
var stamp = regexp.MustCompile(`,"id":"(?:[^"\\]|\\.)*"(?:,"seq":\d+)?}$`)

// Unstamp returns a published event without the id and seq that
// event.Stamp appended: the event as its producer gave it, for tests that
// compare events with the client contract's examples.
func Unstamp(msg string) string { return stamp.ReplaceAllString(msg, "}") }
