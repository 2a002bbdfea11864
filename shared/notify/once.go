package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/store"
)

// ErrIDConflict means an event's id is held in its owner's history by a
// different event: the id was reused for another message.
var ErrIDConflict = errors.New("event id held by a different event")

// PublishOnce is Publish for a producer that names each event itself (the
// publish API's idempotency key): an owner-wide event whose id its owner's
// history holds already is not pushed again. The result is the held event's
// id and seq with Duplicate set and nothing delivered; if the held event is
// not ev, the error wraps ErrIDConflict. An event for one client is not
// kept, so it is published each time.
func (n *Notifier) PublishOnce(ctx context.Context, ownerID, clientID, id string, ev event.Event) (Result, error) {
	return n.publish(ctx, ownerID, clientID, id, ev, true)
}

// held answers a PublishOnce whose event the history held already as rec;
// data is the event being published, as event.Marshal encoded it.
func (res Result) held(rec store.Event, data []byte) (Result, error) {
	if !bytes.Equal(rec.Body, data) {
		return Result{}, fmt.Errorf("event %s of %s: %w", rec.ID, rec.OwnerID, ErrIDConflict)
	}
	res.Seq, res.Duplicate = rec.Seq, true
	return res, nil
}

// Connections returns ownerID's live connection records, as a publish would
// find them: presence. Like a publish, it corrects the owner's connection
// count if it has drifted from the records.
func (n *Notifier) Connections(ctx context.Context, ownerID string) ([]store.Connection, error) {
	return n.listConnections(ctx, ownerID)
}
