package dynamo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/notify/notifytest"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// testRequestCounts measures the DynamoDB requests the notifier makes per
// publish and per connect, for owners of 1, 100 and 5,000 connections, by
// counting at the SDK client's HTTP client, and checks them against these
// formulas (n connections, Q(n) Query pages = ⌊n/L⌋+1 at a page limit of L
// items, since a full page carries a LastEvaluatedKey even when nothing
// follows, on DynamoDB and dynalite alike; Q(n) = 1 with DynamoDB's own 1 MB
// pages, which hold some 9,000 of our items with short client ids):
//
//   - publish: Q(n) Queries, which read the owner's connection count with
//     its records (it was a GetItem of its own), plus an UpdateItem
//     correcting the count when it differs from the records listed, plus
//     per gone connection a DeleteItem, and one
//     UpdateItem of the count for all of them (two when the count had
//     drifted below them) and per removed record a DeleteItem of its id
//     item, plus the history's record of an owner-wide event: for the
//     job_progress published here a GetItem and 2 UpdateItem (the job item,
//     for a redelivery; the owner's counter; the job item, which is the
//     progress), where it was 2 PutItem and 3 UpdateItem (history_requests_test.go
//     has every kind of event). Only the Query grows with n.
//   - a batch of publishes (notify.PublishBatch, the job queue's): the
//     history's requests of each, and Q(n) Queries for them all.
//   - connect: GetItem of the key, UpdateItem of the count (the per-owner
//     cap), 2 PutItem (the record, then its id item): 4, whatever n.
//   - connect at the cap: GetItem of the key, the refused UpdateItem, and
//     Q(n) Queries of the owner's records looking for connections of
//     expired signed tokens to close (notify's expired-token rule): 3 at
//     1 MB pages, the Query's read units growing with n. A process that
//     found none makes no such Query for that owner for 10 seconds (or
//     until a token it saw expires): the next connect at the cap within
//     them is 2 requests, whatever n.
//   - refused connect (client id taken): the key's GetItem, the count's
//     UpdateItem, the refused PutItem of the record, a consistent
//     GetItem of the holder (not on DynamoDB, which returns the holder in
//     the failed PutItem's error), and an UpdateItem giving the count back.
//   - take-over: the same plus a PutItem conditioned on the old connection,
//     a PutItem of the new id item and a DeleteItem of the old one.
//   - disconnect: 3 (DeleteItem of the id item, which names the record,
//     DeleteItem of the record, UpdateItem of the count), no read.
//
// It also asks for the consumed capacity of each connect and disconnect (see
// capacityClient) and checks what dynalite reports: for a connect 1 read unit
// (the key, consistently read) and 3 write units (the count, the record, its
// id item), for a disconnect 3 write units and no read, whatever n. Before
// the count, a connect queried the owner's whole partition for the cap, as a
// publish does: at 5,000 connections 130 read units in 1 MB pages.
//
// Before the id item, a connection was found by its id through a global
// secondary index (byConnection), eventually consistent: a connect was 3
// requests (1 PutItem), a disconnect 3 (a Query of the index, 0.5 read units,
// then a DeleteItem and the count's UpdateItem). dynalite reports no index
// writes, but DynamoDB charges each write of a record to the index as well:
// a write unit per connect, disconnect and gone record, two per take-over.
// The id item costs the same write units the index did, and saves the
// disconnect's read.
func testRequestCounts(t *testing.T, endpoint string, plain *dynamodb.Client) {
	counted, m := meteredClient(endpoint)
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
			check := func(what string, want map[string]int) map[string]float64 {
				t.Helper()
				got, units := m.take()
				t.Logf("n=%d %-40s %2d requests %v, %g capacity units %v", n, what, sum(got), got, sum(units), units)
				if !maps.Equal(got, want) {
					t.Errorf("%s: requests %v, want %v", what, got, want)
				}
				return units
			}
			wantUnits := func(what string, got, want map[string]float64) {
				t.Helper()
				if !maps.Equal(got, want) {
					t.Errorf("%s: capacity units %v as dynalite counts them, want %v", what, got, want)
				}
			}

			m.take()
			for i, limit := range []int32{0, 100} {
				res, err := notifier(limit).Publish(ctx, "acct_1", "", "", ev)
				if err != nil || res.Delivered != n {
					t.Fatalf("Publish = %+v, %v; want %d delivered", res, err, n)
				}
				// The seeded records were never counted: the first publish
				// counts them. The count item lies at the end of the
				// owner's partition: pages of L items read n+1 of them.
				want := map[string]int{"GetItem": 1, "Query": queries(n+1, limit), "UpdateItem": 2 + 1 - i}
				check("publish, "+pagesOf(limit), want)
			}

			// A batch of 10 (a busy queue's), each of its own job: the
			// history's requests for each, one list for them all.
			var batch []notify.BatchItem
			for j := range 10 {
				batch = append(batch, notify.BatchItem{OwnerID: "acct_1", Event: event.JobProgress{Type: event.TypeJobProgress,
					JobID: fmt.Sprint("job_b", j), Progress: 10, ProcessedCount: 1, TotalCount: 10}})
			}
			if _, errs := notifier(0).PublishBatch(ctx, batch); errors.Join(errs...) != nil {
				t.Fatal(errors.Join(errs...))
			}
			check("batch of 10 publishes", map[string]int{"GetItem": 10, "Query": 1, "UpdateItem": 20})

			// A publisher that hands owners of more than 100 connections
			// off reads one page of at most 102 items to decide, whatever
			// n: the whole list when n <= 100, and no more otherwise.
			handoffs := 0
			handing := notify.New(auth.NewAuthenticator(New(counted, table)), New(counted, table), rec, slog.New(slog.DiscardHandler),
				notify.Config{Now: func() time.Time { return now }, HandoffAbove: 100, Handoff: handoffFunc(func(context.Context, notify.Fanout) (notify.Result, error) {
					handoffs++
					return notify.Result{Delivered: n}, nil
				})})
			if res, err := handing.Publish(ctx, "acct_1", "", "", ev); err != nil || res.Delivered != n {
				t.Fatalf("Publish = %+v, %v; want %d delivered", res, err, n)
			}
			check(fmt.Sprintf("publish deciding on a hand-off (%d)", handoffs), map[string]int{"GetItem": 1, "Query": 1, "UpdateItem": 2})
			if want := map[bool]int{true: 1, false: 0}[n > 100]; handoffs != want {
				t.Errorf("%d hand-offs for %d connections above 100, want %d", handoffs, n, want)
			}

			if _, err := notifier(100).Connect(ctx, notify.ConnectRequest{Token: key, ClientID: "fresh", ConnectionID: "Fresh0000000001="}); err != nil {
				t.Fatal(err)
			}
			units := check("connect", map[string]int{"GetItem": 1, "UpdateItem": 1, "PutItem": 2})
			wantUnits("connect", units, map[string]float64{"GetItem": 1, "UpdateItem": 1, "PutItem": 2})

			n1 := notifier(0)
			rec.SetGone(conn(0, seeded).ConnectionID)
			res, err := n1.Publish(ctx, "acct_1", "", "", ev)
			if err != nil || res.Delivered != n || res.Gone != 1 {
				t.Fatalf("Publish = %+v, %v; want %d delivered, 1 gone", res, err, n)
			}
			check("publish, one connection gone", map[string]int{"GetItem": 1, "Query": 1, "DeleteItem": 2, "UpdateItem": 2 + 1})

			_, err = n1.Connect(ctx, notify.ConnectRequest{Token: key, ClientID: "fresh", ConnectionID: "Fresh0000000002="})
			if notify.ErrorCode(err) != notify.CodeConflict {
				t.Fatalf("duplicate Connect = %v, want a conflict", err)
			}
			check("connect refused (client id taken)", map[string]int{"GetItem": 2, "PutItem": 1, "UpdateItem": 2})

			if err := New(plain, table).PutConnection(ctx, conn(0, seeded), seeded); err != nil {
				t.Fatal(err)
			}
			if _, err := New(plain, table).ReserveConnection(ctx, "acct_1", n+1); err != nil {
				t.Fatal(err) // counted as its own connect would have
			}
			m.take()
			if _, err := n1.Connect(ctx, notify.ConnectRequest{Token: key, ClientID: conn(0, seeded).ClientID, ConnectionID: "Fresh0000000003="}); err != nil {
				t.Fatal(err)
			}
			check("connect taking over a gone connection", map[string]int{"GetItem": 2, "PutItem": 3, "DeleteItem": 1, "UpdateItem": 2})

			full := notify.New(auth.NewAuthenticator(New(counted, table)), New(counted, table), rec, slog.New(slog.DiscardHandler),
				notify.Config{Now: func() time.Time { return now }, MaxConnectionsPerOwner: n + 1})
			_, err = full.Connect(ctx, notify.ConnectRequest{Token: key, ClientID: "one-too-many", ConnectionID: "Fresh0000000004="})
			if notify.ErrorCode(err) != notify.CodeForbidden {
				t.Fatalf("Connect over the cap = %v, want %s", err, notify.CodeForbidden)
			}
			check("connect refused at the cap, looking for expired tokens", map[string]int{"GetItem": 1, "UpdateItem": 1, "Query": 1})
			_, err = full.Connect(ctx, notify.ConnectRequest{Token: key, ClientID: "one-too-many", ConnectionID: "Fresh0000000005="})
			if notify.ErrorCode(err) != notify.CodeForbidden {
				t.Fatalf("Connect over the cap = %v, want %s", err, notify.CodeForbidden)
			}
			units = check("connect refused at the cap, held off", map[string]int{"GetItem": 1, "UpdateItem": 1})
			// A refused conditional write reports nothing on dynalite (see capacityClient).
			wantUnits("connect refused at the cap, held off", units, map[string]float64{"GetItem": 1})

			if err := n1.Disconnect(ctx, "Fresh0000000001="); err != nil {
				t.Fatal(err)
			}
			units = check("disconnect", map[string]int{"DeleteItem": 2, "UpdateItem": 1})
			wantUnits("disconnect", units, map[string]float64{"DeleteItem": 2, "UpdateItem": 1})
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

// BenchmarkRequests reports what one connect and one publish cost on
// dynalite, for owners of 1, 100 and 5,000 connections: requests and
// capacity units (as dynalite counts them, see capacityClient) per
// operation. testRequestCounts holds the same counts to their formulas.
//
//	go test -run '^$' -bench Requests -benchtime 20x ./shared/store/dynamo/
func BenchmarkRequests(b *testing.B) {
	endpoint := testenv.Dynalite(b)
	for _, n := range []int{1, 100, 5000} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) { benchmarkRequests(b, endpoint, n) })
	}
}

func benchmarkRequests(b *testing.B, endpoint string, n int) {
	plain := newClient(endpoint)
	counted, m := meteredClient(endpoint)
	table := newTable(b, plain)
	seeded := time.Now().Truncate(time.Second)
	seed(b, plain, table, 0, n, seeded)
	ctx := testCtx(b)
	if err := New(plain, table).PutKey(ctx, auth.Key{Hash: auth.Hash("wsn_bench"), OwnerID: "acct_1", CreatedAt: seeded}); err != nil {
		b.Fatal(err)
	}
	s := New(counted, table)
	notifier := notify.New(auth.NewAuthenticator(s), s, notifytest.NewRecorder(), slog.New(slog.DiscardHandler), notify.Config{})
	ev := event.JobProgress{Type: event.TypeJobProgress, JobID: "job_1", Progress: 10, ProcessedCount: 1, TotalCount: 10}
	if _, err := notifier.Publish(ctx, "acct_1", "", "", ev); err != nil { // counts the seeded records
		b.Fatal(err)
	}
	var connects, connectUnits, publishes, readUnits float64
	take := func() (requests, units float64) {
		ops, byOp := m.take()
		return float64(sum(ops)), sum(byOp)
	}
	take()
	i := 0
	for b.Loop() {
		id := fmt.Sprintf("Bench%010d=", i)
		if _, err := notifier.Connect(ctx, notify.ConnectRequest{Token: "wsn_bench", ClientID: fmt.Sprint("bench-", i), ConnectionID: id}); err != nil {
			b.Fatal(err)
		}
		r, u := take()
		connects, connectUnits = connects+r, connectUnits+u
		if err := notifier.Disconnect(ctx, id); err != nil {
			b.Fatal(err)
		}
		take()
		if _, err := notifier.Publish(ctx, "acct_1", "", "", ev); err != nil {
			b.Fatal(err)
		}
		r, u = take()
		publishes, readUnits = publishes+r, readUnits+u
		i++
	}
	b.ReportMetric(connects/float64(b.N), "requests/connect")
	b.ReportMetric(connectUnits/float64(b.N), "units/connect")
	b.ReportMetric(publishes/float64(b.N), "requests/publish")
	b.ReportMetric(readUnits/float64(b.N), "units/publish")
}

// handoffFunc is a notify.Handoff of a function.
type handoffFunc func(context.Context, notify.Fanout) (notify.Result, error)

func (f handoffFunc) FanOut(ctx context.Context, fo notify.Fanout) (notify.Result, error) {
	return f(ctx, fo)
}
