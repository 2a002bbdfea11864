package dynamo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// testHistoryRequestCounts measures the DynamoDB requests of the history for
// an owner of 1 and of 1,000 connections, by counting at the SDK client's
// HTTP client, and checks them against these formulas, which hold whatever
// the owner's connections (the history lives in a partition of its own):
//
//   - record an event: 4 (PutItem of the id marker, UpdateItem of the
//     counter, UpdateItem of the marker with the seq, PutItem of the event);
//     a job event: 5 (and UpdateItem of the job item).
//   - record a redelivered event: 3 (PutItem of the marker, refused; GetItem
//     of the marker; PutItem of the event item again, in case its publisher
//     died before it); a job event: 4 (and UpdateItem of the job item,
//     refused unless it was missing). On DynamoDB one fewer: it returns the
//     marker in the refusal, and the store asks it to.
//   - a redelivery racing its first delivery also reads the marker about
//     every 10 to 200 ms while it waits (3 s at most).
//   - EventsSince, one page: GetItem of the counter, Query of up to limit
//     events (about one more page per limit events skipped as expired, which
//     lie before the held ones until TTL deletes them), and a
//     Query for the window's oldest event when since lies above the oldest
//     seq retention by count keeps (its first item answers, unless expired
//     events lie before: then 100 more a page): 2 or 3.
//   - CurrentJobs: GetItem of the counter, Query of the owner's job items
//     (one item per job seen within the events' time to live, some 100 bytes
//     once finished, so one 1 MB page up to thousands of jobs): 2.
//
// It also asks for each request's consumed capacity and checks what dynalite
// reports (see capacityClient) for small events (60-byte bodies): a unit per
// successful write (4 per event, 5 per job event) and per read (a page of 10
// events is under 4 KB), so a redelivery costs a write and a read here. On
// DynamoDB, which charges refused conditional writes and spares the read, a
// redelivery costs 2 writes, 3 for a job event.
func testHistoryRequestCounts(t *testing.T, endpoint string, plain *dynamodb.Client) {
	counted, m := meteredClient(endpoint)
	for _, n := range []int{1, 1000} {
		t.Run(fmt.Sprintf("for %d connections of one owner", n), func(t *testing.T) {
			table := newTable(t, plain)
			seed(t, plain, table, 0, n, at)
			s := New(counted, table)
			check := func(what string, want map[string]int, wantUnits float64) {
				t.Helper()
				got, units := m.take()
				totalUnits := sum(units)
				t.Logf("n=%d %-44s %2d requests %v, %g capacity units %v", n, what, sum(got), got, totalUnits, units)
				if !maps.Equal(got, want) {
					t.Errorf("%s: requests %v, want %v", what, got, want)
				}
				if totalUnits != wantUnits {
					t.Errorf("%s: %g capacity units as dynalite counts them, want %g", what, totalUnits, wantUnits)
				}
			}
			m.take()

			mustRecord(t, s, historyEvent("up-1", "file_uploaded", ""), 100, at)
			check("record", map[string]int{"PutItem": 2, "UpdateItem": 2}, 4)
			mustRecord(t, s, historyEvent("job-1", "job_progress", "job_1"), 100, at)
			check("record a job event", map[string]int{"PutItem": 2, "UpdateItem": 3}, 5)
			mustRecord(t, s, historyEvent("up-1", "file_uploaded", ""), 100, at)
			check("record a redelivery", map[string]int{"PutItem": 2, "GetItem": 1}, 2)
			mustRecord(t, s, historyEvent("job-1", "job_progress", "job_1"), 100, at)
			check("record a redelivered job event", map[string]int{"PutItem": 2, "GetItem": 1, "UpdateItem": 1}, 2)

			for i := range 28 {
				mustRecord(t, s, historyEvent(fmt.Sprint("more-", i), "job_progress", fmt.Sprint("job_", i%5)), 100, at)
			}
			m.take()
			page := func(since int64) {
				t.Helper()
				got, _, err := s.EventsSince(testCtx(t), "acct_1", since, 10, 100, at)
				if err != nil || len(got) != 10 {
					t.Fatalf("EventsSince(%d) = %d events, %v; want 10", since, len(got), err)
				}
			}
			page(0)
			check("EventsSince, a page of 10 from the start", map[string]int{"GetItem": 1, "Query": 1}, 2)
			page(10)
			check("EventsSince, a page of 10 from within", map[string]int{"GetItem": 1, "Query": 2}, 3)
			jobs, _, err := s.CurrentJobs(testCtx(t), "acct_1", 100, at)
			if err != nil || len(jobs) != 5 {
				t.Fatalf("CurrentJobs = %d jobs, %v; want 5", len(jobs), err)
			}
			check("CurrentJobs, 5 jobs", map[string]int{"GetItem": 1, "Query": 1}, 2)
		})
	}
}

// capacityClient asks for every request's consumed capacity and sums what
// the answers report, by operation. It adds ReturnConsumedCapacity=TOTAL to
// the JSON request after the SDK signed it, which dynalite, checking no
// signatures, accepts; the store itself never asks.
//
// What dynalite reports: for a write that succeeds, the larger of the item's
// size before and after in 1 KB units (so 1 for our small items), for a
// consistent GetItem the item's size in 4 KB units, for a Query the size of
// the items it read in 4 KB units (rounded up once per page); a refused
// conditional write is an error and reports nothing, where DynamoDB charges
// it as a write of the item.
type capacityClient struct {
	next  dynamodb.HTTPClient
	mu    sync.Mutex
	units map[string]float64
}

func (c *capacityClient) Do(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(body, []byte("{")) || bytes.Contains(body, []byte(`"ReturnConsumedCapacity"`)) {
		return nil, fmt.Errorf("capacityClient: unexpected request %.40s", body)
	}
	body = append([]byte(`{"ReturnConsumedCapacity":"TOTAL",`), body[1:]...)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	resp, err := c.next.Do(r)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	answer, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	var out struct {
		ConsumedCapacity struct{ CapacityUnits float64 }
	}
	if err := json.Unmarshal(answer, &out); err != nil {
		return nil, fmt.Errorf("capacityClient: %w", err)
	}
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	c.mu.Lock()
	c.units[op] += out.ConsumedCapacity.CapacityUnits
	c.mu.Unlock()
	return resp, nil
}

// take returns the units since the last take and resets them.
func (c *capacityClient) take() map[string]float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	units := c.units
	c.units = map[string]float64{}
	return units
}
