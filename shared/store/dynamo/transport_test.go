package dynamo

import (
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// lateWriteConn returns from every Write only a while after the bytes went
// out, as when the transport's write goroutine is descheduled (as under the
// race detector) right after sending a request: the response can then
// arrive, and the SDK close the request body, before the write goroutine
// finishes its request.
type lateWriteConn struct{ net.Conn }

func (c lateWriteConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	time.Sleep(100 * time.Millisecond)
	return n, err
}

// TestLateRequestWriteKeepsTheResponse pins the cause of a flaky "use of
// closed network connection" while reading a large Query page: net/http
// finishes writing a request body after handing back the response, the SDK
// closes the body as soon as it has the response, and the closed body's
// WriteTo returns io.EOF, which net/http takes for a write error and closes
// the connection the response is still being read from. The Store gives the
// transport a body of its own (ownBodyClient), which nothing closes early.
// The SDK's default retryer does not help (see ownBodyClient): every attempt
// meets the late write, so retries are off to keep the failure readable.
func TestLateRequestWriteKeepsTheResponse(t *testing.T) {
	const n = 2000
	at := time.Now().Truncate(time.Second)
	var items []string
	for i := range n {
		c := conn(i, at)
		items = append(items, fmt.Sprintf(`{"pk":{"S":"owner#%s"},"sk":{"S":"client#%s"},"connectionId":{"S":%q},"connectedAt":{"S":%q},"expiresAt":{"N":"%d"}}`,
			c.OwnerID, c.ClientID, c.ConnectionID, c.ConnectedAt.Format(time.RFC3339Nano), c.ExpiresAt.Unix()))
	}
	page := []byte(fmt.Sprintf(`{"Count":%d,"Items":[%s],"ScannedCount":%d}`, n, strings.Join(items, ","), n))

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(page)), 10))
		// Half the page now, the rest once the client's write goroutine
		// has woken up from its late write.
		_, _ = w.Write(page[:len(page)/2])
		w.(http.Flusher).Flush()
		time.Sleep(300 * time.Millisecond)
		_, _ = w.Write(page[len(page)/2:])
	}))
	defer srv.Close()

	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		dial := tr.DialContext
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return lateWriteConn{c}, nil
		}
	})
	client := newClient(srv.URL, func(o *dynamodb.Options) {
		o.HTTPClient = httpClient
		o.Retryer = aws.NopRetryer{} // a retry would hide the failure
	})
	got, err := New(client, "t").ListConnections(testCtx(t), "acct_1", at)
	if err != nil || len(got) != n {
		t.Fatalf("ListConnections = %d records, %v; want %d", len(got), err, n)
	}
}
