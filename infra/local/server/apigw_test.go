package server_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/notify/pushertest"
	"github.com/wsnotify/wsnotify/shared/push/apigw"
	"github.com/wsnotify/wsnotify/shared/store"
)

// TestTheCloudPusherWorksAgainstLocalMode points the functions' own pusher —
// apigw.NewClient and apigw.New, as shared/app builds them — at local mode's
// stage URL, and runs the cloud's publish path through it: a live client
// gets the event, a gone one is reported and its record removed.
func TestTheCloudPusherWorksAgainstLocalMode(t *testing.T) {
	t.Parallel()
	h := start(t, twoOwners())
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	pusher := cloudPusher(t, h.base)

	live := h.connect(t, "live", keyA)
	liveID := h.connectionID(t, ownerA, "live")

	t.Run("Alive is true for a live connection and false for an unknown one", func(t *testing.T) {
		if ok, err := pusher.Alive(ctx, liveID); !ok || err != nil {
			t.Fatalf("Alive(live) = %v, %v", ok, err)
		}
		if ok, err := pusher.Alive(ctx, "Tm9TdWNoQ29ubj0="); ok || err != nil {
			t.Fatalf("Alive(unknown) = %v, %v", ok, err)
		}
	})
	t.Run("Post to an unknown connection is ErrGone", func(t *testing.T) {
		if err := pusher.Post(ctx, "Tm9TdWNoQ29ubj0=", []byte(`{}`)); !errors.Is(err, notify.ErrGone) {
			t.Fatalf("err = %v, want ErrGone", err)
		}
	})
	t.Run("an oversized message is refused before it is sent", func(t *testing.T) {
		big := []byte(`"` + strings.Repeat("x", notify.MaxMessageBytes) + `"`)
		if err := pusher.Post(ctx, liveID, big); !errors.Is(err, notify.ErrPayloadTooLarge) {
			t.Fatalf("err = %v, want ErrPayloadTooLarge", err)
		}
	})
	t.Run("a publish through the Notifier delivers to the live client and cleans up a gone one", func(t *testing.T) {
		// The cloud's Notifier, with local mode's store standing in for DynamoDB.
		st := h.srv.Store()
		n := notify.New(auth.NewAuthenticator(st), st, pusher, testLogger(), notify.Config{ConnectGrace: 1})
		// A record whose connection vanished without a $disconnect, as
		// API Gateway allows: only the Management API's 410 reveals it.
		ghost := store.Connection{OwnerID: ownerA, ClientID: "ghost", ConnectionID: "R2hvc3RDb25uMDE=",
			ConnectedAt: time.Now().Add(-time.Hour), ExpiresAt: time.Now().Add(time.Hour)}
		if err := st.PutConnection(ctx, ghost, time.Now()); err != nil {
			t.Fatal(err)
		}
		ev := event.JobComplete{Type: event.TypeJobComplete, JobID: "job_9", Status: event.StatusCompleted, Organized: 3}
		res, err := n.Publish(ctx, ownerA, "", "", ev)
		if err != nil || res.Delivered != 1 || res.Gone != 1 || res.Connecting+res.Failed != 0 {
			t.Fatalf("Publish = %+v, %v; want 1 delivered, 1 gone", res, err)
		}
		conns, _ := st.ListConnections(ctx, ownerA, time.Now())
		if len(conns) != 1 || conns[0].ClientID != "live" {
			t.Fatalf("records after the publish: %+v; want the ghost removed", conns)
		}
		if m := read(t, live); m["type"] != "job_complete" || m["jobId"] != "job_9" {
			t.Fatalf("live client got %v", m)
		}
	})
}

// TestTheCloudPusherKeepsThePusherContract runs the pusher contract on the
// functions' own Management API pusher against local mode, whose hub passes
// the same suite in-process: what the core relies on holds on both paths.
func TestTheCloudPusherKeepsThePusherContract(t *testing.T) {
	t.Parallel()
	pushertest.Run(t, func(t *testing.T) pushertest.Target {
		h := start(t, twoOwners())
		n := 0
		return pushertest.Target{
			Pusher: cloudPusher(t, h.base),
			Connect: func(t *testing.T) pushertest.Connection {
				n++
				client := fmt.Sprintf("contract-%d", n)
				c := h.connect(t, client, keyA)
				return pushertest.Connection{
					ID: h.connectionID(t, ownerA, client),
					Next: func(t *testing.T) []byte {
						t.Helper()
						ctx, cancel := context.WithTimeout(context.Background(), wait)
						defer cancel()
						// The suite posts its own bytes, not the server's events.
						_, data, err := c.ReadUnchecked(ctx)
						if err != nil {
							t.Fatalf("read from %s: %v", client, err)
						}
						return data
					},
					End: func(t *testing.T) {
						if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
							t.Fatal(err)
						}
					},
				}
			},
		}
	})
}

// cloudPusher is the functions' Management API pusher, as shared/app builds
// it, pointed at local mode's stage URL.
func cloudPusher(t *testing.T, base string) *apigw.Pusher {
	t.Helper()
	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDLOCAL", "local-secret", "")}
	client, err := apigw.NewClient(cfg, base+"/local", 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	return apigw.New(client, testLogger())
}
