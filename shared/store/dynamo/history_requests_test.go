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
//   - record a job_progress: 2 writes (UpdateItem of the counter, UpdateItem
//     of the job item, which is the progress) beside 1 read (an eventually
//     consistent GetItem of the job item, for a redelivery): 3 requests. It was 5 writes: a marker
//     PutItem, the counter, the marker's seq, the event PutItem, the job item.
//   - record a job_complete or an error of a job: 3 writes (the counter, the
//     job item, PutItem of the event item) and the read: 4. It was 5 writes.
//   - record an event of no job (file_uploaded, an error of no job): 3 writes
//     (the counter, PutItem of the id marker, PutItem of the event item) and
//     a GetItem of the marker: 4. It was 4 writes.
//   - record a redelivered event: the GetItem that finds its id, and for an
//     event with an event item a GetItem of it (written again only if its
//     publisher died before writing it): 1 request for a job_progress, 2
//     for the others, no write. It was 2 writes and a read (the refused
//     PutItem and UpdateItem of the marker, which DynamoDB charges, and a
//     GetItem).
//   - EventsSince, one page: GetItem of the counter, Query of up to limit
//     event items (about one more page per limit events skipped as expired,
//     which lie before the held ones until TTL deletes them), Query of the
//     owner's job items (one item per job seen within the events' time to
//     live, some 200 bytes once finished, so one 1 MB page up to thousands
//     of jobs), and a Query for expired events below since when since lies
//     above the oldest seq retention by count keeps (its first item
//     answers, unless expired events lie before: then 100 more a page): 3 or 4.
//   - CurrentJobs: GetItem of the counter, Query of the owner's job items: 2.
//
// It also asks for each request's consumed capacity and checks what dynalite
// reports (see capacityClient) for small events (60-byte bodies): a unit per
// write (every item stays under 1 KB: the counter's ring of 16 ids and the
// job item's of 4 are hashes of 16 characters), a unit per consistent
// GetItem and half a unit per eventually consistent one, the item there or
// not, and per page of a Query (under 4 KB here), as DynamoDB charges them:
// a job_progress costs 2 write units and half a read unit, where it cost 5
// write units and a read unit; a job_complete 3 and half a unit, where it
// cost 5; a file_uploaded 3 and half a unit, where it cost 4. A redelivery
// reads its id's item (half a unit) and, but for a job_progress, its event
// item (a consistent read: a unit). A TransactWriteItems would number and commit in
// one request but cost 2 write units per item, 4 for a job_progress, and
// dynalite has none.
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
				t.Logf("n=%d %-48s %2d requests %v, %g capacity units %v", n, what, sum(got), got, totalUnits, units)
				if !maps.Equal(got, want) {
					t.Errorf("%s: requests %v, want %v", what, got, want)
				}
				if totalUnits != wantUnits {
					t.Errorf("%s: %g capacity units as dynalite counts them, want %g", what, totalUnits, wantUnits)
				}
				writes := got["PutItem"] + got["UpdateItem"] + got["DeleteItem"]
				if limit := writeLimit[what]; writes > limit {
					t.Errorf("%s: %d write requests, over the %d the issue allows", what, writes, limit)
				}
			}
			m.take()

			mustRecord(t, s, historyEvent("job-1", "job_progress", "job_1"), 100, at)
			check("record the first job_progress of a job", map[string]int{"GetItem": 1, "UpdateItem": 2}, 2.5)
			mustRecord(t, s, historyEvent("job-2", "job_progress", "job_1"), 100, at)
			check("record a job_progress", map[string]int{"GetItem": 1, "UpdateItem": 2}, 2.5)
			mustRecord(t, s, historyEvent("job-3", "job_complete", "job_1"), 100, at)
			check("record a job_complete", map[string]int{"GetItem": 1, "UpdateItem": 2, "PutItem": 1}, 3.5)
			mustRecord(t, s, historyEvent("err-1", "error", "job_2"), 100, at)
			check("record an error of a new job", map[string]int{"GetItem": 1, "UpdateItem": 2, "PutItem": 1}, 3.5)
			mustRecord(t, s, historyEvent("up-1", "file_uploaded", ""), 100, at)
			check("record a file_uploaded", map[string]int{"GetItem": 1, "UpdateItem": 1, "PutItem": 2}, 3.5)
			mustRecord(t, s, historyEvent("job-2", "job_progress", "job_1"), 100, at)
			check("record a redelivered job_progress", map[string]int{"GetItem": 1}, 0.5)
			mustRecord(t, s, historyEvent("job-3", "job_complete", "job_1"), 100, at)
			check("record a redelivered job_complete", map[string]int{"GetItem": 2}, 1.5)
			mustRecord(t, s, historyEvent("up-1", "file_uploaded", ""), 100, at)
			check("record a redelivered file_uploaded", map[string]int{"GetItem": 2}, 1.5)

			for i := range 28 {
				mustRecord(t, s, historyEvent(fmt.Sprint("more-", i), "file_uploaded", ""), 100, at)
			}
			for i := range 5 {
				mustRecord(t, s, historyEvent(fmt.Sprint("run-", i), "job_progress", fmt.Sprint("run_", i)), 100, at)
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
			check("EventsSince, a page of 10 from the start", map[string]int{"GetItem": 1, "Query": 2}, 3)
			page(10)
			check("EventsSince, a page of 10 from within", map[string]int{"GetItem": 1, "Query": 3}, 4)
			jobs, _, err := s.CurrentJobs(testCtx(t), "acct_1", 100, at)
			if err != nil || len(jobs) != 5 {
				t.Fatalf("CurrentJobs = %d jobs, %v; want 5", len(jobs), err)
			}
			check("CurrentJobs, 5 jobs", map[string]int{"GetItem": 1, "Query": 1}, 2)
		})
	}
}

// writeLimit is the bound on write requests per recorded event.
var writeLimit = map[string]int{
	"record the first job_progress of a job": 2,
	"record a job_progress":                  2,
	"record a job_complete":                  3,
	"record an error of a new job":           3,
	"record a file_uploaded":                 3,
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
