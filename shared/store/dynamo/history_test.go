package dynamo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsnotify/wsnotify/shared/store"
)

// at is the history tests' clock, a whole second as the table keeps times.
var at = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// historyEvent is acct_1's event id of type typ for job (none if empty),
// expiring a day after at.
func historyEvent(id, typ, job string) store.Event {
	return store.Event{
		OwnerID: "acct_1", ID: id, Type: typ, JobID: job,
		Body:      []byte(fmt.Sprintf(`{"type":%q,"jobId":%q,"note":%q}`, typ, job, id)),
		ExpiresAt: at.Add(24 * time.Hour),
	}
}

func mustRecord(t *testing.T, s *Store, e store.Event, keep int, now time.Time) (store.Event, bool) {
	t.Helper()
	got, dup, err := s.RecordEvent(testCtx(t), e, keep, now)
	if err != nil {
		t.Fatalf("RecordEvent(%s): %v", e.ID, err)
	}
	return got, dup
}

// replay returns the seqs of acct_1's held events and the window.
func replay(t *testing.T, s *Store, since int64, keep int, now time.Time) (string, store.Window) {
	t.Helper()
	got, w, err := s.EventsSince(testCtx(t), "acct_1", since, 100, keep, now)
	if err != nil {
		t.Fatalf("EventsSince(%d): %v", since, err)
	}
	seqs := make([]int64, len(got))
	for i, e := range got {
		seqs[i] = e.Seq
	}
	return fmt.Sprint(seqs), w
}

// shape renders an item as attribute name -> type:value.
func shape(it map[string]types.AttributeValue) map[string]string {
	out := map[string]string{}
	for name, v := range it {
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			out[name] = "S:" + v.Value
		case *types.AttributeValueMemberN:
			out[name] = "N:" + v.Value
		case *types.AttributeValueMemberB:
			out[name] = "B:" + string(v.Value)
		default:
			out[name] = fmt.Sprintf("%T", v)
		}
	}
	return out
}

// faultyDB passes requests on to the table, but for those its hooks fail or
// precede.
type faultyDB struct {
	api
	beforeGet  func(in *dynamodb.GetItemInput)
	failUpdate func(ctx context.Context, in *dynamodb.UpdateItemInput) error
}

func (f faultyDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if f.beforeGet != nil {
		f.beforeGet(in)
	}
	return f.api.GetItem(ctx, in, optFns...)
}

func (f faultyDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if f.failUpdate != nil {
		if err := f.failUpdate(ctx, in); err != nil {
			return nil, err
		}
	}
	return f.api.UpdateItem(ctx, in, optFns...)
}

// losingClient passes requests on, but hands the SDK a 500 instead of the
// answer to the first request that lose matches (by operation and body),
// after the server has carried it out: an answer lost on its way back.
type losingClient struct {
	next dynamodb.HTTPClient
	lose func(op, body string) bool
	mu   sync.Mutex
	lost int
}

func (c *losingClient) Do(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	resp, err := c.next.Do(r)
	if err != nil {
		return nil, err
	}
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	c.mu.Lock()
	lose := c.lost == 0 && c.lose(op, string(body))
	if lose {
		c.lost++
	}
	c.mu.Unlock()
	if !lose {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return &http.Response{
		StatusCode: http.StatusInternalServerError,
		Header:     http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:       io.NopCloser(strings.NewReader(`{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"answer lost"}`)),
		Request:    r,
	}, nil
}

// testHistory runs the history's DynamoDB-specific cases: its items, and
// what happens when a publisher fails or dies part-way.
func testHistory(t *testing.T, endpoint string, client *dynamodb.Client) {
	t.Run("history items have the documented shape and stay out of the owner's connections", func(t *testing.T) {
		s := New(client, newTable(t, client))
		c := conn(1, at)
		if err := s.PutConnection(testCtx(t), c, at); err != nil {
			t.Fatal(err)
		}
		e := historyEvent("msg-1", "job_progress", "job_1")
		e.ExpiresAt = at.Add(24*time.Hour + 300*time.Millisecond)
		mustRecord(t, s, e, 10, at)
		exp := fmt.Sprintf("N:%d", at.Add(24*time.Hour).Unix()+1) // rounded up, as a connection's
		body := "B:" + string(e.Body)
		for _, x := range []struct {
			sk   string
			want map[string]string
		}{
			{"head", map[string]string{"head": "N:1"}},
			{"seq#00000000000000000001", map[string]string{"id": "S:msg-1", "type": "S:job_progress", "jobId": "S:job_1", "body": body, "expiresAt": exp}},
			{"id#msg-1", map[string]string{"seq": "N:1", "type": "S:job_progress", "jobId": "S:job_1", "body": body, "claimedAt": fmt.Sprintf("N:%d", at.Unix()), "expiresAt": exp}},
			{"job#job_1", map[string]string{"seq": "N:1", "id": "S:msg-1", "type": "S:job_progress", "body": body, "expiresAt": exp}},
		} {
			it, err := s.getItem(testCtx(t), historyKey("acct_1", x.sk))
			if err != nil {
				t.Fatal(err)
			}
			got := shape(it)
			if got["pk"] != "S:history#acct_1" || got["sk"] != "S:"+x.sk {
				t.Fatalf("item %s: keys %s/%s", x.sk, got["pk"], got["sk"])
			}
			// The claim and the ticket are random: present, and not compared.
			for _, random := range []string{"claim", "ticket"} {
				if v, ok := got[random]; ok && !strings.HasPrefix(v, "S:") {
					t.Fatalf("item %s: %s = %s", x.sk, random, v)
				}
				delete(got, random)
			}
			delete(got, "pk")
			delete(got, "sk")
			if fmt.Sprint(got) != fmt.Sprint(x.want) {
				t.Fatalf("item %s = %v\nwant %v", x.sk, got, x.want)
			}
		}
		// The owner's connection partition holds its connection only.
		out, err := client.Query(testCtx(t), &dynamodb.QueryInput{
			TableName:                 &s.table,
			KeyConditionExpression:    aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str("owner#acct_1")},
		})
		if err != nil || out.Count != 1 {
			t.Fatalf("owner#acct_1 holds %d items (%v), want its one connection", out.Count, err)
		}
		if got, err := s.ListConnections(testCtx(t), "acct_1", at); err != nil || len(got) != 1 || got[0].ConnectionID != c.ConnectionID {
			t.Fatalf("ListConnections = %v, %v; want the one connection", got, err)
		}
	})

	t.Run("a finished job's item keeps no body", func(t *testing.T) {
		s := New(client, newTable(t, client))
		mustRecord(t, s, historyEvent("msg-1", "job_progress", "job_1"), 10, at)
		mustRecord(t, s, historyEvent("msg-2", "job_complete", "job_1"), 10, at)
		it, err := s.getItem(testCtx(t), historyKey("acct_1", "job#job_1"))
		if err != nil {
			t.Fatal(err)
		}
		if got := shape(it); got["seq"] != "N:2" || got["type"] != "S:job_complete" || got["body"] != "" {
			t.Fatalf("job item after job_complete = %v", got)
		}
	})

	t.Run("a redelivery writes the event and job items its publisher never wrote", func(t *testing.T) {
		s := New(client, newTable(t, client))
		e := historyEvent("msg-1", "job_progress", "job_1")
		mustRecord(t, s, e, 10, at)
		// The publisher died after numbering the event (step 3), before
		// writing its items.
		for _, sk := range []string{seqSK(1), "job#job_1"} {
			if _, err := client.DeleteItem(testCtx(t), &dynamodb.DeleteItemInput{TableName: &s.table, Key: historyKey("acct_1", sk)}); err != nil {
				t.Fatal(err)
			}
		}
		if got, _ := replay(t, s, 0, 10, at); got != "[]" {
			t.Fatalf("replay after the deletes: %s", got)
		}
		if got, dup := mustRecord(t, s, e, 10, at); !dup || got.Seq != 1 {
			t.Fatalf("redelivery = seq %d, duplicate %v; want seq 1, a duplicate", got.Seq, dup)
		}
		if got, w := replay(t, s, 0, 10, at); got != "[1]" || w != (store.Window{Head: 1, Oldest: 1}) {
			t.Fatalf("replay = %s, %+v; want [1]", got, w)
		}
		jobs, _, err := s.CurrentJobs(testCtx(t), "acct_1", 10, at)
		if err != nil || len(jobs) != 1 || jobs[0].JobID != "job_1" || string(jobs[0].Body) != string(e.Body) {
			t.Fatalf("CurrentJobs = %+v, %v; want job_1", jobs, err)
		}
	})

	t.Run("a claim numbered while a redelivery waits gives back its event", func(t *testing.T) {
		s := New(client, newTable(t, client))
		other := New(client, s.table)
		e := historyEvent("msg-1", "file_uploaded", "")
		first, again := e, e
		again.Body = []byte(`{"changed":true}`)
		if _, err := client.PutItem(testCtx(t), &dynamodb.PutItemInput{TableName: &s.table, Item: markerItem(first, "other", at)}); err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		s.db = faultyDB{api: s.db, beforeGet: func(*dynamodb.GetItemInput) {
			// The other publisher numbers and writes the event as the
			// redelivery first reads its claim.
			once.Do(func() {
				seq, ok, err := other.numberEvent(testCtx(t), "acct_1", e.ID, "other")
				if err != nil || !ok {
					t.Errorf("the other publisher's numbering: %d, %v, %v", seq, ok, err)
				}
				first.Seq = seq
				if err := other.writeEvent(testCtx(t), first); err != nil {
					t.Error(err)
				}
			})
		}}
		got, dup := mustRecord(t, s, again, 10, at)
		if !dup || got.Seq != 1 || string(got.Body) != string(first.Body) {
			t.Fatalf("redelivery = seq %d, duplicate %v, body %s; want the held event 1", got.Seq, dup, got.Body)
		}
	})

	t.Run("a claim in flight past the wait is store.ErrEventInFlight, and is left alone", func(t *testing.T) {
		s := New(client, newTable(t, client))
		s.inFlightWait = 30 * time.Millisecond
		e := historyEvent("msg-1", "file_uploaded", "")
		if _, err := client.PutItem(testCtx(t), &dynamodb.PutItemInput{TableName: &s.table, Item: markerItem(e, "other", at)}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.RecordEvent(testCtx(t), e, 10, at.Add(claimLease-time.Second)); !errors.Is(err, store.ErrEventInFlight) {
			t.Fatalf("RecordEvent = %v, want store.ErrEventInFlight", err)
		}
		it, err := s.getItem(testCtx(t), markerKey("acct_1", e.ID))
		if err != nil || getS(it, attrClaim) != "other" || it[attrSeq] != nil {
			t.Fatalf("marker = %v, %v; want the other publisher's claim, unnumbered", shape(it), err)
		}
	})

	t.Run("a lapsed claim is taken over, and the seq its publisher took is a gap", func(t *testing.T) {
		s := New(client, newTable(t, client))
		e := historyEvent("msg-1", "file_uploaded", "")
		// The first publisher claimed the id, took seq 1 and died.
		if _, err := client.PutItem(testCtx(t), &dynamodb.PutItemInput{TableName: &s.table, Item: markerItem(e, "dead", at)}); err != nil {
			t.Fatal(err)
		}
		if seq, err := s.nextSeq(testCtx(t), "acct_1"); err != nil || seq != 1 {
			t.Fatalf("nextSeq = %d, %v", seq, err)
		}
		again := e
		again.Body = []byte(`{"changed":true}`)
		later := at.Add(claimLease)
		got, dup := mustRecord(t, s, again, 10, later)
		if dup || got.Seq != 2 || string(got.Body) != string(e.Body) {
			t.Fatalf("take-over = seq %d, duplicate %v, body %s; want seq 2, the first delivery's body", got.Seq, dup, got.Body)
		}
		if got, w := replay(t, s, 0, 10, later); got != "[2]" || w != (store.Window{Head: 2, Oldest: 2}) {
			t.Fatalf("replay = %s, %+v; want [2] from 2: seq 1 is a gap", got, w)
		}
		if got, dup := mustRecord(t, s, e, 10, later); !dup || got.Seq != 2 {
			t.Fatalf("another redelivery = seq %d, duplicate %v; want 2, a duplicate", got.Seq, dup)
		}
	})

	for _, x := range []struct {
		step, expr string
		head       int64 // after the failure
	}{
		// The counter was not updated: no seq lost.
		{"taking a seq", "ADD #head :one SET #ticket = :ticket", 0},
		// The seq taken is lost: a gap.
		{"committing the seq", "SET #seq = :seq", 1},
	} {
		t.Run("a publisher failing at "+x.step+" releases its claim", func(t *testing.T) {
			s := New(client, newTable(t, client))
			plain := s.db
			throttled := errors.New("throttled")
			s.db = faultyDB{api: plain, failUpdate: func(_ context.Context, in *dynamodb.UpdateItemInput) error {
				if *in.UpdateExpression == x.expr {
					return throttled
				}
				return nil
			}}
			e := historyEvent("msg-1", "file_uploaded", "")
			if _, _, err := s.RecordEvent(testCtx(t), e, 10, at); !errors.Is(err, throttled) {
				t.Fatalf("RecordEvent = %v, want the failure", err)
			}
			if it, err := s.getItem(testCtx(t), markerKey("acct_1", e.ID)); err != nil || len(it) != 0 {
				t.Fatalf("marker = %v, %v; want it released", shape(it), err)
			}
			s.db = plain
			if got, dup := mustRecord(t, s, e, 10, at); dup || got.Seq != x.head+1 {
				t.Fatalf("redelivery = seq %d, duplicate %v; want seq %d", got.Seq, dup, x.head+1)
			}
		})
	}

	t.Run("a publisher that cannot number within half the lease gives up and releases its claim", func(t *testing.T) {
		s := New(client, newTable(t, client))
		s.claimLease = 200 * time.Millisecond
		plain := s.db
		s.db = faultyDB{api: plain, failUpdate: func(ctx context.Context, in *dynamodb.UpdateItemInput) error {
			if strings.HasPrefix(*in.UpdateExpression, "ADD") {
				<-ctx.Done() // DynamoDB throttling, retried until the deadline
				return ctx.Err()
			}
			return nil
		}}
		e := historyEvent("msg-1", "file_uploaded", "")
		if _, _, err := s.RecordEvent(testCtx(t), e, 10, at); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("RecordEvent = %v, want the deadline exceeded", err)
		}
		if it, err := s.getItem(testCtx(t), markerKey("acct_1", e.ID)); err != nil || len(it) != 0 {
			t.Fatalf("marker = %v, %v; want it released", shape(it), err)
		}
	})

	for _, x := range []struct{ step, op, match string }{
		{"claiming the id", "PutItem", `"S":"id#`},
		{"taking a seq", "UpdateItem", `ADD #head`},
		{"committing the seq", "UpdateItem", `"SET #seq = :seq"`},
	} {
		t.Run("an answer lost at "+x.step+" and resent by the SDK leaves no gap", func(t *testing.T) {
			losing := &losingClient{next: awshttp.NewBuildableClient(), lose: func(op, body string) bool {
				return op == x.op && strings.Contains(body, x.match)
			}}
			retrying := newClient(endpoint, func(o *dynamodb.Options) {
				o.HTTPClient = losing
				o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
					so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
					so.RateLimiter = ratelimit.None
				})
			})
			s := New(retrying, newTable(t, client))
			for i, want := range []int64{1, 2} {
				if got, dup := mustRecord(t, s, historyEvent(fmt.Sprint("msg-", i), "file_uploaded", ""), 10, at); dup || got.Seq != want {
					t.Fatalf("event %d = seq %d, duplicate %v; want %d", i, got.Seq, dup, want)
				}
			}
			if losing.lost != 1 {
				t.Fatalf("%d answers lost, want 1", losing.lost)
			}
			if got, w := replay(t, s, 0, 10, at); got != "[1 2]" || w.Head != 2 {
				t.Fatalf("replay = %s, head %d; want [1 2]", got, w.Head)
			}
		})
	}

	t.Run("an expired id is new again", func(t *testing.T) {
		s := New(client, newTable(t, client))
		e := historyEvent("msg-1", "file_uploaded", "")
		e.ExpiresAt = at.Add(time.Hour)
		mustRecord(t, s, e, 10, at)
		later := at.Add(2 * time.Hour)
		e.ExpiresAt = later.Add(time.Hour)
		if got, dup := mustRecord(t, s, e, 10, later); dup || got.Seq != 2 {
			t.Fatalf("after expiry = seq %d, duplicate %v; want a new event 2", got.Seq, dup)
		}
	})

	t.Run("an id past the count bound still gets its event back until it expires", func(t *testing.T) {
		s := New(client, newTable(t, client))
		for i := range 4 {
			mustRecord(t, s, historyEvent(fmt.Sprint("msg-", i), "file_uploaded", ""), 2, at)
		}
		if got, dup := mustRecord(t, s, historyEvent("msg-0", "file_uploaded", ""), 2, at); !dup || got.Seq != 1 {
			t.Fatalf("redelivery of event 1 = seq %d, duplicate %v; want 1, a duplicate", got.Seq, dup)
		}
		if got, w := replay(t, s, 0, 2, at); got != "[3 4]" || w != (store.Window{Head: 4, Oldest: 3}) {
			t.Fatalf("replay = %s, %+v; want [3 4]", got, w)
		}
	})

	t.Run("the window's oldest event is found below since and past expired ones", func(t *testing.T) {
		s := New(client, newTable(t, client))
		s.pageLimit = 2
		for i := range 6 {
			e := historyEvent(fmt.Sprint("msg-", i), "job_progress", fmt.Sprint("job_", i))
			e.ExpiresAt = at.Add(time.Duration(i+1) * time.Hour)
			mustRecord(t, s, e, 10, at)
		}
		// Events 1 to 3 have expired; 4 to 6 are held.
		later := at.Add(200 * time.Minute)
		want := store.Window{Head: 6, Oldest: 4}
		for _, since := range []int64{0, 2, 4, 5, 6, 9} {
			if _, w := replay(t, s, since, 10, later); w != want {
				t.Errorf("since %d: window %+v, want %+v", since, w, want)
			}
		}
		if _, w, err := s.EventsSince(testCtx(t), "acct_1", 5, 0, 10, later); err != nil || w != want {
			t.Errorf("limit 0: window %+v, %v; want %+v", w, err, want)
		}
		if jobs, head, err := s.CurrentJobs(testCtx(t), "acct_1", 10, later); err != nil || len(jobs) != 3 || head != want.Head {
			t.Errorf("CurrentJobs = %d jobs, head %d, %v; want 3 and %d", len(jobs), head, err, want.Head)
		}
		if _, w := replay(t, s, 0, 1, later); w != (store.Window{Head: 6, Oldest: 6}) {
			t.Errorf("keep 1: window %+v, want 6 to 6", w)
		}
	})
}
