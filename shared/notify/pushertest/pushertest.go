// Package pushertest is the contract suite every notify.Pusher passes: the
// in-process hub (shared/push/hub), the Management API pusher
// (shared/push/apigw) against local mode's Management API, and the test
// recorder (notify/notifytest). It pins what the notifier relies on: a post
// arrives as one message, byte for byte and in order; the message limit is
// enforced before anything is sent; a connection that has ended is gone,
// never silently swallowing what is posted to it.
package pushertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/notify"
)

// Wait bounds every wait of the suite for something a pusher does in the
// background.
const Wait = 10 * time.Second

// Connection is one live connection a Target opened for the suite.
type Connection struct {
	// ID is the connection id the pusher knows it by.
	ID string
	// Next returns the next message its client received, failing the test
	// if none arrives within Wait.
	Next func(t *testing.T) []byte
	// End ends the connection as its client would (or as API Gateway does
	// when the client goes away).
	End func(t *testing.T)
}

// Target is the pusher under test and the means to open connections for it.
type Target struct {
	Pusher  notify.Pusher
	Connect func(t *testing.T) Connection
}

// Run runs the suite; newTarget is called once per test.
func Run(t *testing.T, newTarget func(t *testing.T) Target) {
	t.Run("a post arrives as one message, byte for byte", func(t *testing.T) { testExact(t, newTarget(t)) })
	t.Run("posts to a connection arrive in order", func(t *testing.T) { testOrder(t, newTarget(t)) })
	t.Run("the message limit holds and refuses before sending", func(t *testing.T) { testLimit(t, newTarget(t)) })
	t.Run("a connection that ended is gone", func(t *testing.T) { testGone(t, newTarget(t)) })
	t.Run("concurrent posts to many connections all arrive", func(t *testing.T) { testConcurrent(t, newTarget(t)) })
}

func withWait(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	t.Cleanup(cancel)
	return ctx
}

func post(t *testing.T, ctx context.Context, p notify.Pusher, id string, data []byte) {
	t.Helper()
	if err := p.Post(ctx, id, data); err != nil {
		t.Fatalf("Post(%s, %d bytes): %v", id, len(data), err)
	}
}

func expect(t *testing.T, c Connection, want []byte) {
	t.Helper()
	if got := c.Next(t); !bytes.Equal(got, want) {
		t.Fatalf("received %.80q (%d bytes), want %.80q (%d bytes)", got, len(got), want, len(want))
	}
}

func testExact(t *testing.T, tg Target) {
	ctx := withWait(t)
	c := tg.Connect(t)
	if ok, err := tg.Pusher.Alive(ctx, c.ID); !ok || err != nil {
		t.Fatalf("Alive(open connection) = %v, %v", ok, err)
	}
	msg := []byte(`{"type":"file_uploaded","fileId":"f","name":"Grüße – 報告.pdf","size":1}`)
	post(t, ctx, tg.Pusher, c.ID, msg)
	expect(t, c, msg)
}

func testOrder(t *testing.T, tg Target) {
	ctx := withWait(t)
	c := tg.Connect(t)
	const n = 50
	for i := range n {
		post(t, ctx, tg.Pusher, c.ID, fmt.Appendf(nil, `{"n":%d}`, i))
	}
	for i := range n {
		expect(t, c, fmt.Appendf(nil, `{"n":%d}`, i))
	}
}

func testLimit(t *testing.T, tg Target) {
	ctx := withWait(t)
	c := tg.Connect(t)
	largest := []byte(`"` + strings.Repeat("x", notify.MaxMessageBytes-2) + `"`)
	post(t, ctx, tg.Pusher, c.ID, largest)
	expect(t, c, largest)
	over := []byte(`"` + strings.Repeat("x", notify.MaxMessageBytes-1) + `"`)
	if err := tg.Pusher.Post(ctx, c.ID, over); !errors.Is(err, notify.ErrPayloadTooLarge) {
		t.Fatalf("Post(%d bytes) = %v, want ErrPayloadTooLarge", len(over), err)
	}
	// Nothing of the refused message arrives: the next message is the next post.
	after := []byte(`{"after":"the refused one"}`)
	post(t, ctx, tg.Pusher, c.ID, after)
	expect(t, c, after)
	if ok, err := tg.Pusher.Alive(ctx, c.ID); !ok || err != nil {
		t.Fatalf("the connection did not survive a refused post: Alive = %v, %v", ok, err)
	}
}

func testGone(t *testing.T, tg Target) {
	ctx := withWait(t)
	c := tg.Connect(t)
	other := tg.Connect(t)
	c.End(t)
	// Ending is asynchronous for a real connection: wait, with a deadline,
	// for the pusher to see it.
	deadline := time.Now().Add(Wait)
	for {
		ok, err := tg.Pusher.Alive(ctx, c.ID)
		if err != nil {
			t.Fatalf("Alive(ended) error: %v", err)
		}
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an ended connection is still alive")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := tg.Pusher.Post(ctx, c.ID, []byte(`{}`)); !errors.Is(err, notify.ErrGone) {
		t.Fatalf("Post(ended) = %v, want ErrGone", err)
	}
	// The others are untouched.
	post(t, ctx, tg.Pusher, other.ID, []byte(`{"still":"here"}`))
	expect(t, other, []byte(`{"still":"here"}`))
}

func testConcurrent(t *testing.T, tg Target) {
	ctx := withWait(t)
	const conns, each = 8, 25
	cs := make([]Connection, conns)
	for i := range cs {
		cs[i] = tg.Connect(t)
	}
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				if err := tg.Pusher.Post(ctx, c.ID, fmt.Appendf(nil, `{"c":%d,"n":%d}`, i, j)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, c := range cs {
		for j := range each {
			expect(t, c, fmt.Appendf(nil, `{"c":%d,"n":%d}`, i, j))
		}
	}
}
