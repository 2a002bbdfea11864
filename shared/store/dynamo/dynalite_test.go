package dynamo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsnotify/wsnotify/infra/template"
	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/store"
	"github.com/wsnotify/wsnotify/shared/store/storetest"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// testPageLimit makes the contract suite's fan-out test cross Query pages.
const testPageLimit = storetest.PagedConnections / 3

// newClient returns a DynamoDB client for a dynalite endpoint.
func newClient(endpoint string, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	}, optFns...)
}

var tables atomic.Int64

// newTable creates a fresh table from template.yaml and returns its name.
func newTable(t testing.TB, client *dynamodb.Client) string {
	t.Helper()
	name := fmt.Sprintf("connections-%d", tables.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := template.CreateTable(ctx, client, name); err != nil {
		t.Fatalf("create table: %v", err)
	}
	return name
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestDynalite runs every test that needs a DynamoDB server against one
// dynalite, each on a table of its own.
func TestDynalite(t *testing.T) {
	endpoint := testenv.Dynalite(t)
	client := newClient(endpoint)

	t.Run("the contract suite passes", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) storetest.Store {
			s := New(client, newTable(t, client))
			s.pageLimit = testPageLimit
			return s
		})
	})

	t.Run("the history contract suite passes", func(t *testing.T) {
		storetest.RunHistory(t, func(t *testing.T) notify.History {
			s := New(client, newTable(t, client))
			// Small pages, so replays and the jobs' Query cross pages.
			s.pageLimit = 4
			return s
		})
	})

	t.Run("a connection is stored in the documented item shape", func(t *testing.T) {
		s := New(client, newTable(t, client))
		at := time.Date(2030, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
		c := store.Connection{OwnerID: "acct_1", ClientID: "tab-1", ConnectionID: "TWegAcC4EowCHnA=", ConnectedAt: at, ExpiresAt: at.Add(2 * time.Hour)}
		if err := s.PutConnection(testCtx(t), c, at); err != nil {
			t.Fatal(err)
		}
		item := func(pk, sk string) map[string]string {
			t.Helper()
			out, err := client.GetItem(testCtx(t), &dynamodb.GetItemInput{
				TableName: &s.table,
				Key:       map[string]types.AttributeValue{"pk": str(pk), "sk": str(sk)},
			})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for name, v := range out.Item {
				switch v := v.(type) {
				case *types.AttributeValueMemberS:
					got[name] = "S:" + v.Value
				case *types.AttributeValueMemberN:
					got[name] = "N:" + v.Value
				default:
					got[name] = fmt.Sprintf("%T", v)
				}
			}
			return got
		}
		want := map[string]string{
			"pk":           "S:owner#acct_1",
			"sk":           "S:client#tab-1",
			"connectionId": "S:TWegAcC4EowCHnA=",
			"connectedAt":  "S:2030-01-02T03:04:05.6Z",
			// Rounded up to the second: the TTL never cuts a record short.
			"expiresAt": fmt.Sprintf("N:%d", at.Add(2*time.Hour).Unix()+1),
		}
		if got := item("owner#acct_1", "client#tab-1"); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("record = %v\nwant     %v", got, want)
		}
		// The id item: the same, keyed by the connection id, with the owner
		// and client ids, and the same expiry for TTL.
		want["pk"], want["sk"] = "S:conn#TWegAcC4EowCHnA=", "S:conn"
		want["ownerId"], want["clientId"] = "S:acct_1", "S:tab-1"
		if got := item("conn#TWegAcC4EowCHnA=", "conn"); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("id item = %v\nwant      %v", got, want)
		}
	})

	t.Run("a key of an existing hash is refused, not overwritten", func(t *testing.T) {
		s := New(client, newTable(t, client))
		k := auth.Key{Hash: auth.Hash("wsn_x"), OwnerID: "acct_1", CreatedAt: time.Now()}
		if err := s.PutKey(testCtx(t), k); err != nil {
			t.Fatal(err)
		}
		other := k
		other.OwnerID = "acct_2"
		if err := s.PutKey(testCtx(t), other); !errors.Is(err, ErrKeyExists) {
			t.Fatalf("second PutKey = %v, want ErrKeyExists", err)
		}
		if got, err := s.LookupKey(testCtx(t), k.Hash); err != nil || got.OwnerID != "acct_1" {
			t.Fatalf("LookupKey = %+v, %v; want the first owner", got, err)
		}
	})

	t.Run("keys are listed across scan pages", func(t *testing.T) {
		s := New(client, newTable(t, client))
		s.pageLimit = 2
		for i := range 5 {
			if err := s.PutConnection(testCtx(t), conn(i, time.Now()), time.Now()); err != nil {
				t.Fatal(err)
			}
			if err := s.PutKey(testCtx(t), auth.Key{Hash: auth.Hash(fmt.Sprint("wsn_", i)), OwnerID: "acct_1", CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		keys, err := s.ListKeys(testCtx(t))
		if err != nil || len(keys) != 5 {
			t.Fatalf("ListKeys = %d keys, %v; want 5", len(keys), err)
		}
	})

	t.Run("1,200 connections are listed at DynamoDB's own page size", func(t *testing.T) {
		s := New(client, newTable(t, client))
		now := time.Now()
		seed(t, client, s.table, 0, 1200, now)
		got, err := s.ListConnections(testCtx(t), "acct_1", now)
		if err != nil || len(got) != 1200 {
			t.Fatalf("ListConnections = %d records, %v; want 1200", len(got), err)
		}
	})

	t.Run("a disconnect and a resume right after the connect wait for no index", func(t *testing.T) { testLaggingReads(t, client) })
	t.Run("requests per publish and per connect", func(t *testing.T) { testRequestCounts(t, endpoint, client) })
	t.Run("the requests benchmark runs", func(t *testing.T) {
		res := testing.Benchmark(func(b *testing.B) { benchmarkRequests(b, endpoint, 1) })
		if res.N < 1 || res.Extra["requests/connect"] != 4 || res.Extra["requests/publish"] != 4 {
			t.Fatalf("benchmark result %v %v", res, res.Extra)
		}
	})
	t.Run("history", func(t *testing.T) { testHistory(t, endpoint, client) })
	t.Run("requests per record, replay page and snapshot", func(t *testing.T) { testHistoryRequestCounts(t, endpoint, client) })
}

// conn returns the record of acct_1's client number i.
func conn(i int, at time.Time) store.Connection {
	return store.Connection{
		OwnerID:      "acct_1",
		ClientID:     fmt.Sprintf("tab-%05d", i),
		ConnectionID: fmt.Sprintf("Conn%011d=", i),
		ConnectedAt:  at,
		ExpiresAt:    at.Add(3 * time.Hour),
	}
}

// seed writes acct_1's clients from to to-1 with BatchWriteItem, 25 items a
// request, the quickest way to fill a table for a large fan-out.
func seed(t testing.TB, client *dynamodb.Client, table string, from, to int, at time.Time) {
	t.Helper()
	var batches [][]types.WriteRequest
	for i := from; i < to; i += 25 {
		var b []types.WriteRequest
		for j := i; j < min(i+25, to); j++ {
			b = append(b, types.WriteRequest{PutRequest: &types.PutRequest{Item: connectionItem(conn(j, at))}})
		}
		batches = append(batches, b)
	}
	work := make(chan []types.WriteRequest)
	errs := make(chan error, 1)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for b := range work {
				reqs := map[string][]types.WriteRequest{table: b}
				for len(reqs) > 0 {
					out, err := client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: reqs})
					if err != nil {
						select {
						case errs <- err:
						default:
						}
						break
					}
					reqs = out.UnprocessedItems
				}
			}
		})
	}
	for _, b := range batches {
		work <- b
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("seed: %v", err)
	default:
	}
}

// meteredClient returns a DynamoDB client for endpoint whose requests are
// counted by operation and whose consumed capacity is summed, both read
// through the meter. It does not retry: a retry would count as a request of
// its own, so a transient failure surfaces as the error it is rather than as
// a miscount.
func meteredClient(endpoint string) (*dynamodb.Client, meter) {
	counter := &countingClient{base: awshttp.NewBuildableClient(), ops: map[string]int{}}
	metered := &capacityClient{next: counter, units: map[string]float64{}}
	client := newClient(endpoint, func(o *dynamodb.Options) {
		o.HTTPClient = metered
		o.Retryer = aws.NopRetryer{}
	})
	return client, meter{counter, metered}
}

// meter reads what a meteredClient counted.
type meter struct {
	requests *countingClient
	units    *capacityClient
}

// take returns the requests and the capacity units, each by operation,
// counted since the last take, and resets both.
func (m meter) take() (map[string]int, map[string]float64) {
	return m.requests.take(), m.units.take()
}

// sum adds up the figures of every operation.
func sum[V int | float64](byOp map[string]V) V {
	var total V
	for _, v := range byOp {
		total += v
	}
	return total
}

// countingClient counts the DynamoDB requests that go through it, by
// operation. Its DynamoDB client does not retry (see testRequestCounts).
type countingClient struct {
	base *awshttp.BuildableClient
	mu   sync.Mutex
	ops  map[string]int
}

func (c *countingClient) Do(r *http.Request) (*http.Response, error) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	c.mu.Lock()
	c.ops[op]++
	c.mu.Unlock()
	return c.base.Do(r)
}

// take returns the counts since the last take and resets them.
func (c *countingClient) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := c.ops
	c.ops = map[string]int{}
	return ops
}
