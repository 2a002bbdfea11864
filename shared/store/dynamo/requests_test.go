package dynamo

import (
	"fmt"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/notify/notifytest"
)

// testRequestCounts measures the DynamoDB requests the notifier makes per
// publish and per connect, for owners of 1, 100 and 5,000 connections, by
// counting at the SDK client's HTTP client, and checks them against these
// formulas (n connections, Q(n) Query pages = ⌊n/L⌋+1 at a page limit of L
// items, since a full page carries a LastEvaluatedKey even when nothing
// follows, on DynamoDB and dynalite alike; Q(n) = 1 with DynamoDB's own 1 MB
// pages, which hold some 9,000 of our items with short client ids):
//
//   - publish: Q(n) Queries, plus 1 DeleteItem per gone connection, plus
//     the history's record of an owner-wide event: 2 PutItem (its id
//     marker, the event) and 2 UpdateItem (the owner's counter, the seq on
//     the marker), and 1 UpdateItem more for a job event (the job's state).
//     The history's cost is the same whatever the number of connections.
//   - connect: GetItem of the key, Q(n) Queries for notify's per-owner
//     connection cap, PutItem.
//   - refused connect: the same plus a consistent GetItem of the holder
//     (not on DynamoDB, which returns the holder in the failed PutItem's error).
//   - take-over: the same plus a PutItem conditioned on the old connection.
//   - disconnect: 2 (Query on the byConnection index, DeleteItem).
func testRequestCounts(t *testing.T, endpoint string, plain *dynamodb.Client) {
	counter := &countingClient{base: awshttp.NewBuildableClient(), ops: map[string]int{}}
	counted := newClient(endpoint, func(o *dynamodb.Options) {
		o.HTTPClient = counter
		// A retry would count as a request of its own: surface a transient
		// failure as the error it is rather than as a miscount.
		o.Retryer = aws.NopRetryer{}
	})
	for _, n := range []int{1, 100, 5000} {
		t.Run(fmt.Sprintf("for %d connections of one owner", n), func(t *testing.T) {
			ctx := testCtx(t)
			table := newTable(t, plain)
			seeded := time.Now().Truncate(time.Second)
			now := seeded.Add(time.Hour) // the seeded records are past the connect grace
			seed(t, plain, table, 0, n, seeded)
			key := "wsn_counted"
			if err := New(plain, table).PutKey(ctx, auth.Key{Hash: auth.Hash(key), OwnerID: "acct_1", CreatedAt: seeded}); err != nil {
				t.Fatal(err)
			}
			rec := notifytest.NewRecorder()
			notifier := func(pageLimit int32) *notify.Notifier {
				s := New(counted, table)
				s.pageLimit = pageLimit
				return notify.New(auth.NewAuthenticator(s), s, rec, slog.New(slog.DiscardHandler), notify.Config{Now: func() time.Time { return now }})
			}
			ev := event.JobProgress{Type: event.TypeJobProgress, JobID: "job_1", Progress: 10, ProcessedCount: 1, TotalCount: 10}
			check := func(what string, want map[string]int) {
				t.Helper()
				got := counter.take()
				total := 0
				for _, c := range got {
					total += c
				}
				t.Logf("n=%d %-40s %2d requests %v", n, what, total, got)
				if !maps.Equal(got, want) {
					t.Errorf("%s: requests %v, want %v", what, got, want)
				}
			}

			counter.take()
			for _, limit := range []int32{0, 100} {
				res, err := notifier(limit).Publish(ctx, "acct_1", "", "", ev)
				if err != nil || res.Delivered != n {
					t.Fatalf("Publish = %+v, %v; want %d delivered", res, err, n)
				}
				check("publish, "+pagesOf(limit), map[string]int{"Query": queries(n, limit), "PutItem": 2, "UpdateItem": 3})
			}

			// notify checks the owner's connection cap on connect with the
			// fan-out's own Query: its cost grows with the owner's connections.
			if _, err := notifier(100).Connect(ctx, notify.ConnectRequest{Token: key, ClientID: "fresh", ConnectionID: "Fresh0000000001="}); err != nil {
				t.Fatal(err)
			}
			check("connect, "+pagesOf(100), map[string]int{"GetItem": 1, "Query": queries(n, 100), "PutItem": 1})

			n1 := notifier(0)
			rec.SetGone(conn(0, seeded).ConnectionID)
			res, err := n1.Publish(ctx, "acct_1", "", "", ev)
			if err != nil || res.Delivered != n || res.Gone != 1 {
				t.Fatalf("Publish = %+v, %v; want %d delivered, 1 gone", res, err, n)
			}
			check("publish, one connection gone", map[string]int{"Query": 1, "DeleteItem": 1, "PutItem": 2, "UpdateItem": 3})

			_, err = n1.Connect(ctx, notify.ConnectRequest{Token: key, ClientID: "fresh", ConnectionID: "Fresh0000000002="})
			if notify.ErrorCode(err) != notify.CodeConflict {
				t.Fatalf("duplicate Connect = %v, want a conflict", err)
			}
			check("connect refused (client id taken)", map[string]int{"GetItem": 2, "Query": 1, "PutItem": 1})

			if err := New(plain, table).PutConnection(ctx, conn(0, seeded), seeded); err != nil {
				t.Fatal(err)
			}
			counter.take()
			if _, err := n1.Connect(ctx, notify.ConnectRequest{Token: key, ClientID: conn(0, seeded).ClientID, ConnectionID: "Fresh0000000003="}); err != nil {
				t.Fatal(err)
			}
			check("connect taking over a gone connection", map[string]int{"GetItem": 2, "Query": 1, "PutItem": 2})

			if err := n1.Disconnect(ctx, "Fresh0000000001="); err != nil {
				t.Fatal(err)
			}
			check("disconnect", map[string]int{"Query": 1, "DeleteItem": 1})
		})
	}
}

// queries is the number of Query requests that list n items at a page limit
// (0: DynamoDB's 1 MB pages, which hold all of the test's owners).
func queries(n int, limit int32) int {
	if limit == 0 {
		return 1
	}
	return n/int(limit) + 1
}

func pagesOf(limit int32) string {
	if limit == 0 {
		return "1 MB pages"
	}
	return fmt.Sprintf("pages of %d", limit)
}
