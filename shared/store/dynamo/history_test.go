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

// staleDB answers every eventually consistent GetItem with no item, as a
// read may that comes a moment after the item's write.
type staleDB struct{ api }

func (d staleDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if in.ConsistentRead == nil || !*in.ConsistentRead {
		return &dynamodb.GetItemOutput{}, nil
	}
	return d.api.GetItem(ctx, in, optFns...)
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
		progress := historyEvent("msg-1", "job_progress", "job_1")
		progress.ExpiresAt = at.Add(24*time.Hour + 300*time.Millisecond)
		mustRecord(t, s, progress, 10, at)
		upload := historyEvent("msg-2", "file_uploaded", "")
		mustRecord(t, s, upload, 10, at)
		exp := fmt.Sprintf("N:%d", at.Add(24*time.Hour).Unix()+1) // rounded up, as a connection's
		exp2 := fmt.Sprintf("N:%d", at.Add(24*time.Hour).Unix())
		h1, h2 := "S:"+idHash("msg-1"), "S:"+idHash("msg-2")
		head := map[string]string{"head": "N:2", "n0": h2, "s0": "N:2", "n1": h1, "s1": "N:1"}
		for i := 2; i < counterRing; i++ {
			head[fmt.Sprint("n", i)], head[fmt.Sprint("s", i)] = "S:-", "N:0"
		}
		job := map[string]string{"seq": "N:1", "id": "S:msg-1", "type": "S:job_progress", "body": "B:" + string(progress.Body), "expiresAt": exp,
			"r0": h1, "q0": "N:1", "r1": "S:-", "q1": "N:0", "r2": "S:-", "q2": "N:0", "r3": "S:-", "q3": "N:0"}
		for _, x := range []struct {
			sk   string
			want map[string]string
		}{
			{"head", head},
			// A job_progress is its job's state only: no event item, no id marker.
			{"job#job_1", job},
			{"seq#00000000000000000001", nil},
			{"id#msg-1", nil},
			{"seq#00000000000000000002", map[string]string{"id": "S:msg-2", "type": "S:file_uploaded", "body": "B:" + string(upload.Body), "expiresAt": exp2}},
			{"id#msg-2", map[string]string{"seq": "N:2", "type": "S:file_uploaded", "body": "B:" + string(upload.Body), "expiresAt": exp2}},
		} {
			it, err := s.getItem(testCtx(t), historyKey("acct_1", x.sk))
			if err != nil {
				t.Fatal(err)
			}
			got := shape(it)
			if x.want == nil {
				if len(it) != 0 {
					t.Fatalf("item %s = %v, want none", x.sk, got)
				}
				continue
			}
			if got["pk"] != "S:history#acct_1" || got["sk"] != "S:"+x.sk {
				t.Fatalf("item %s: keys %s/%s", x.sk, got["pk"], got["sk"])
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

	t.Run("a job_progress's event item, from a version that kept every step, is not replayed", func(t *testing.T) {
		s := New(client, newTable(t, client))
		mustRecord(t, s, historyEvent("msg-1", "job_progress", "job_1"), 10, at)
		mustRecord(t, s, historyEvent("msg-2", "job_progress", "job_1"), 10, at)
		old := historyEvent("msg-1", "job_progress", "job_1")
		old.Seq = 1
		if err := s.putEvent(testCtx(t), old); err != nil {
			t.Fatal(err)
		}
		if got, w := replay(t, s, 0, 10, at); got != "[2]" || w.Head != 2 {
			t.Fatalf("replay = %s, head %d; want [2], the job's state", got, w.Head)
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

	for _, typ := range []string{"job_complete", "file_uploaded"} {
		t.Run("a redelivered "+typ+" writes the event item its publisher never wrote", func(t *testing.T) {
			s := New(client, newTable(t, client))
			job := ""
			if typ == "job_complete" {
				job = "job_1"
			}
			e := historyEvent("msg-1", typ, job)
			mustRecord(t, s, e, 10, at)
			// The publisher died after committing the event (step 3),
			// before writing its event item.
			if _, err := client.DeleteItem(testCtx(t), &dynamodb.DeleteItemInput{TableName: &s.table, Key: historyKey("acct_1", seqSK(1))}); err != nil {
				t.Fatal(err)
			}
			if got, _ := replay(t, s, 0, 10, at); got != "[]" {
				t.Fatalf("replay after the delete: %s", got)
			}
			if got, dup := mustRecord(t, s, e, 10, at); !dup || got.Seq != 1 || string(got.Body) != string(e.Body) {
				t.Fatalf("redelivery = seq %d, duplicate %v, body %s; want seq 1, a duplicate", got.Seq, dup, got.Body)
			}
			if got, w := replay(t, s, 0, 10, at); got != "[1]" || w != (store.Window{Head: 1, Oldest: 1}) {
				t.Fatalf("replay = %s, %+v; want [1]", got, w)
			}
		})
	}

	for _, x := range []struct{ typ, job string }{{"job_progress", "job_1"}, {"job_complete", "job_1"}, {"file_uploaded", ""}} {
		t.Run("two deliveries of a "+x.typ+" at once take one seq", func(t *testing.T) {
			s := New(client, newTable(t, client))
			e := historyEvent("msg-1", x.typ, x.job)
			// The first delivery has numbered the event, not committed it,
			// when the second runs whole: the counter's ring gives the
			// second the same seq.
			h := idHash(e.ID)
			seq, err := s.number(testCtx(t), "acct_1", h, 0)
			if err != nil || seq != 1 {
				t.Fatalf("number = %d, %v", seq, err)
			}
			if got, _ := mustRecord(t, s, e, 10, at); got.Seq != 1 {
				t.Fatalf("the second delivery got seq %d, want 1", got.Seq)
			}
			first := e
			first.Seq = seq
			// Sent once, its refusal is the second's commit: a duplicate
			// (a write the SDK sent again would be taken as done).
			if state, holder, err := s.commit(testCtx(t), first, h, at); err != nil || state != heldByOther || len(holder) == 0 {
				t.Fatalf("the first delivery's commit = %v, %v; want it refused, holder returned", state, err)
			}
			if got, dup := mustRecord(t, s, e, 10, at); !dup || got.Seq != 1 {
				t.Fatalf("a third delivery = seq %d, duplicate %v; want 1, a duplicate", got.Seq, dup)
			}
			want := "[1]"
			if got, w := replay(t, s, 0, 10, at); got != want || w.Head != 1 {
				t.Fatalf("replay = %s, head %d; want %s, head 1", got, w.Head, want)
			}
		})
	}

	for _, x := range []struct{ typ, job string }{{"job_progress", "job_1"}, {"job_complete", "job_1"}, {"file_uploaded", ""}} {
		t.Run("a redelivery of a "+x.typ+" whose read misses the commit is still a duplicate", func(t *testing.T) {
			s := New(client, newTable(t, client))
			e := historyEvent("msg-1", x.typ, x.job)
			mustRecord(t, s, e, 10, at)
			// Step 1's read is eventually consistent: here it has not
			// seen the commit yet. The writes find the id held.
			plain := s.db
			s.db = staleDB{api: plain}
			if got, dup := mustRecord(t, s, e, 10, at); !dup || got.Seq != 1 || string(got.Body) != string(e.Body) {
				t.Fatalf("redelivery = seq %d, duplicate %v, body %s; want seq 1, a duplicate", got.Seq, dup, got.Body)
			}
			s.db = plain
			if got, w := replay(t, s, 0, 10, at); got != "[1]" || w.Head != 1 {
				t.Fatalf("replay = %s, head %d; want [1], head 1", got, w.Head)
			}
		})
	}

	t.Run("a publisher that died after numbering: its redelivery takes the seq back, until the ring has moved on", func(t *testing.T) {
		s := New(client, newTable(t, client))
		dead := historyEvent("msg-dead", "job_progress", "job_1")
		if _, err := s.number(testCtx(t), "acct_1", idHash(dead.ID), 0); err != nil {
			t.Fatal(err)
		}
		mustRecord(t, s, historyEvent("msg-2", "file_uploaded", ""), 10, at)
		if got, dup := mustRecord(t, s, dead, 10, at); dup || got.Seq != 1 {
			t.Fatalf("redelivery = seq %d, duplicate %v; want 1, recorded now", got.Seq, dup)
		}
		if got, w := replay(t, s, 0, 10, at); got != "[1 2]" || w.Head != 2 {
			t.Fatalf("replay = %s, head %d; want [1 2]: no gap", got, w.Head)
		}

		// Past counterRing events, the seq the dead publisher took is a gap.
		late := historyEvent("msg-late", "file_uploaded", "")
		if _, err := s.number(testCtx(t), "acct_1", idHash(late.ID), 0); err != nil {
			t.Fatal(err)
		}
		for i := range counterRing {
			mustRecord(t, s, historyEvent(fmt.Sprint("more-", i), "job_complete", fmt.Sprint("job_", i)), 100, at)
		}
		if got, dup := mustRecord(t, s, late, 100, at); dup || got.Seq != 20 {
			t.Fatalf("late redelivery = seq %d, duplicate %v; want 20, a new seq", got.Seq, dup)
		}
		if got, _ := replay(t, s, 2, 100, at); strings.HasPrefix(got, "[3 ") || !strings.HasPrefix(got, "[4 ") || !strings.HasSuffix(got, " 20]") {
			t.Fatalf("replay = %s; want 4 to 20, seq 3 a gap", got)
		}
	})

	for _, x := range []struct {
		step, expr string
		typ, job   string
	}{
		// The counter was not updated: no seq lost.
		{"taking a seq", "#head = if_not_exists", "job_progress", "job_1"},
		// The seq taken comes back from the counter's ring.
		{"committing a job event", "#seq = :seq", "job_progress", "job_1"},
	} {
		t.Run("a publisher failing at "+x.step+" leaves no gap", func(t *testing.T) {
			s := New(client, newTable(t, client))
			plain := s.db
			throttled := errors.New("throttled")
			s.db = faultyDB{api: plain, failUpdate: func(_ context.Context, in *dynamodb.UpdateItemInput) error {
				if strings.Contains(*in.UpdateExpression, x.expr) {
					return throttled
				}
				return nil
			}}
			e := historyEvent("msg-1", x.typ, x.job)
			if _, _, err := s.RecordEvent(testCtx(t), e, 10, at); !errors.Is(err, throttled) {
				t.Fatalf("RecordEvent = %v, want the failure", err)
			}
			s.db = plain
			if got, dup := mustRecord(t, s, e, 10, at); dup || got.Seq != 1 {
				t.Fatalf("redelivery = seq %d, duplicate %v; want seq 1", got.Seq, dup)
			}
			if got, w := replay(t, s, 0, 10, at); got != "[1]" || w.Head != 1 {
				t.Fatalf("replay = %s, head %d; want [1]", got, w.Head)
			}
		})
	}

	for _, x := range []struct{ step, op, match, typ, job string }{
		{"committing an id marker", "PutItem", `"S":"id#`, "file_uploaded", ""},
		{"taking a seq", "UpdateItem", `#head = if_not_exists`, "file_uploaded", ""},
		{"committing a job event", "UpdateItem", `"S":"job#`, "job_complete", "job_"},
		{"writing an event item", "PutItem", `"S":"seq#`, "error", "job_"},
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
				job := ""
				if x.job != "" {
					job = fmt.Sprint(x.job, i)
				}
				if got, dup := mustRecord(t, s, historyEvent(fmt.Sprint("msg-", i), x.typ, job), 10, at); dup || got.Seq != want {
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
