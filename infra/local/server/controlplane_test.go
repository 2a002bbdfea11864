package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/infra/local/server"
	"github.com/wsnotify/wsnotify/infra/openapi"
	"github.com/wsnotify/wsnotify/shared/metrics"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// controlToken is a control-plane credential long enough to be accepted.
const controlToken = "ctl_0123456789abcdef"

// post sends a control-plane request with the given headers (and Host, if
// set) and returns the status, the AWS error type header and the body.
func (h *harness) post(t *testing.T, method, path, body, host string, header http.Header) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), string(b)
}

// nextIs reads c's next message and fails unless it is the event want:
// whatever a refused request might have pushed would arrive before it.
func nextIs(t *testing.T, c *asyncapi.Conn, want string) {
	t.Helper()
	sameShape(t, read(t, c), want)
}

func sqsBatch(bodies ...string) string {
	type record struct {
		MessageID string `json:"messageId"`
		Body      string `json:"body"`
	}
	var ev struct {
		Records []record `json:"Records"`
	}
	batch := batches.Add(1)
	for i, b := range bodies {
		ev.Records = append(ev.Records, record{MessageID: fmt.Sprintf("b%d-m%d", batch, i+1), Body: b})
	}
	out, _ := json.Marshal(ev)
	return string(out)
}

func TestRouteFunctionsCannotBeInvokedThroughTheInvokeAPI(t *testing.T) {
	t.Parallel()
	h := start(t, twoOwners())
	victim := h.connect(t, "victim", keyA)
	victimConn := h.connectionID(t, ownerA, "victim")

	// Owner B tries to register A's socket under B's owner, and to make it
	// deaf by disconnecting it; both name the connection id they read in a log.
	attacks := map[string]string{
		server.ConnectFunction: fmt.Sprintf(`{"requestContext":{"routeKey":"$connect","eventType":"CONNECT","connectionId":%q},
			"pathParameters":{"client_id":"stolen"},"queryStringParameters":{"token":%q}}`, victimConn, keyB),
		server.DisconnectFunction: fmt.Sprintf(`{"requestContext":{"routeKey":"$disconnect","eventType":"DISCONNECT","connectionId":%q}}`, victimConn),
		server.DefaultFunction:    fmt.Sprintf(`{"requestContext":{"routeKey":"$default","connectionId":%q},"body":"{\"action\":\"ping\"}"}`, victimConn),
	}
	for function, payload := range attacks {
		status, errType, body := h.post(t, http.MethodPost, "/2015-03-31/functions/"+function+"/invocations", payload, "", nil)
		if status != http.StatusForbidden || errType != "AccessDeniedException" || !strings.Contains(body, "lambda:InvokeFunction") {
			t.Errorf("invoke %s: got %d %q %s, want 403 AccessDeniedException", function, status, errType, body)
		}
	}
	if h.hasRecord(t, ownerB, "stolen") || !h.hasRecord(t, ownerA, "victim") {
		t.Fatal("a refused invocation changed the store")
	}
	// B's events do not reach A's socket, and A's still do.
	h.publishJobs(t, envelope(ownerB, "", seedJobComplete), envelope(ownerA, "", seedJobProgress))
	nextIs(t, victim, seedJobProgress)
}

// controlRequest is a request to one route of the control plane, and the
// x-amzn-ErrorType its refusal carries ("" for /metrics: plain text).
type controlRequest struct {
	name, method, path, body, wantType string
}

// checkAnswer holds an answer of the publish API to docs/openapi.yaml.
func (rq controlRequest) checkAnswer(t *testing.T, status int, body string) {
	t.Helper()
	if strings.HasPrefix(rq.path, "/v1/") {
		if err := openapi.CheckResponse(rq.method, rq.path, status, []byte(body)); err != nil {
			t.Error(err)
		}
	}
}

// controlRequests are a request to each route of the control plane; conn
// is an escaped connection id.
func controlRequests(conn string) []controlRequest {
	return []controlRequest{
		{"a job event through the Invoke API", http.MethodPost, "/2015-03-31/functions/JobEventsFunction/invocations",
			sqsBatch(envelope(ownerA, "", seedJobComplete)), "AccessDeniedException"},
		{"a post to a connection", http.MethodPost, "/@connections/" + conn, seedJobComplete, "ForbiddenException"},
		{"a post to a connection under a stage", http.MethodPost, "/local/@connections/" + conn, seedJobComplete, "ForbiddenException"},
		{"a connection's details", http.MethodGet, "/@connections/" + conn, "", "ForbiddenException"},
		{"a connection's deletion", http.MethodDelete, "/@connections/" + conn, "", "ForbiddenException"},
		{"a scrape of /metrics", http.MethodGet, "/metrics", "", ""},
		{"a publish through the publish API", http.MethodPost, "/v1/publish", envelope(ownerA, "", seedJobComplete), ""},
		{"an owner's presence", http.MethodGet, "/v1/owners/" + ownerA + "/connections", "", ""},
	}
}

func TestTheControlPlaneRefusesWebPagesAndForeignHosts(t *testing.T) {
	t.Parallel()
	h := start(t, twoOwners())
	a := h.connect(t, "a", keyA)
	conn := url.PathEscape(h.connectionID(t, ownerA, "a"))
	_, port, _ := net.SplitHostPort(h.host)

	refusals := []struct {
		name   string
		host   string
		header http.Header
		reason string
	}{
		{"from a web page (an Origin header)", "", http.Header{"Origin": {"https://evil.example"}}, "Origin header"},
		{"from a page on this very host (DNS rebinding sends an Origin too)", "", http.Header{"Origin": {"http://" + h.host}}, "Origin header"},
		{"under a foreign host name (DNS rebinding)", "rebind.evil.example:" + port, nil, "loopback host name"},
		{"under a foreign IP address", "203.0.113.9:" + port, nil, "loopback host name"},
	}
	for _, rq := range controlRequests(conn) {
		for _, rf := range refusals {
			t.Run(rq.name+" "+rf.name+" is refused", func(t *testing.T) {
				status, errType, body := h.post(t, rq.method, rq.path, rq.body, rf.host, rf.header)
				rq.checkAnswer(t, status, body)
				if status != http.StatusForbidden || errType != rq.wantType || !strings.Contains(body, rf.reason) {
					t.Fatalf("got %d %q %s, want 403 %s saying %q", status, errType, body, rq.wantType, rf.reason)
				}
			})
		}
	}
	// Nothing refused reached the client or closed it; a request from this
	// machine under a loopback name goes through.
	for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "app.localhost:" + port} {
		status, _, body := h.post(t, http.MethodGet, "/@connections/"+conn, "", host, nil)
		if status != http.StatusOK {
			t.Fatalf("GetConnection with Host %s: %d %s", host, status, body)
		}
	}
	if status, _, body := h.post(t, http.MethodPost, "/2015-03-31/functions/JobEventsFunction/invocations",
		sqsBatch(envelope(ownerA, "", seedJobProgress)), "", nil); status != http.StatusOK {
		t.Fatalf("a plain invoke: %d %s", status, body)
	}
	nextIs(t, a, seedJobProgress)
}

func TestTheControlTokenGuardsEveryControlPlaneRequest(t *testing.T) {
	t.Parallel()
	cfg := twoOwners()
	cfg.ControlToken = controlToken
	h := start(t, cfg)
	a := h.connect(t, "a", keyA) // the WebSocket endpoint needs no control token
	conn := url.PathEscape(h.connectionID(t, ownerA, "a"))

	for _, tt := range []struct {
		name   string
		header http.Header
	}{
		{"without a credential", nil},
		{"with another token", http.Header{"Authorization": {"Bearer ctl_not_the_right_one"}}},
		{"with the token in another scheme", http.Header{"Authorization": {"Basic " + controlToken}}},
		{"with a SigV4 signature only", http.Header{"Authorization": {"AWS4-HMAC-SHA256 Credential=local/20261130/us-east-1/execute-api/aws4_request"}}},
	} {
		for _, rq := range controlRequests(conn) {
			t.Run(rq.name+" "+tt.name+" is refused", func(t *testing.T) {
				status, errType, body := h.post(t, rq.method, rq.path, rq.body, "", tt.header)
				rq.checkAnswer(t, status, body)
				if status != http.StatusForbidden || errType != rq.wantType || !strings.Contains(body, "control token") {
					t.Fatalf("got %d %q %s, want 403 %s asking for the control token", status, errType, body, rq.wantType)
				}
			})
		}
	}
	bearer := http.Header{"Authorization": {"Bearer " + controlToken}}
	if status, _, body := h.post(t, http.MethodPost, "/2015-03-31/functions/JobEventsFunction/invocations",
		sqsBatch(envelope(ownerA, "", seedJobProgress)), "", bearer); status != http.StatusOK {
		t.Fatalf("invoke with the token: %d %s", status, body)
	}
	nextIs(t, a, seedJobProgress)
	if status, _, body := h.post(t, http.MethodPost, "/@connections/"+conn, seedFileUploaded, "", bearer); status != http.StatusOK {
		t.Fatalf("post with the token: %d %s", status, body)
	}
	nextIs(t, a, seedFileUploaded)
	if status, _, body := h.post(t, http.MethodGet, "/metrics", "", "", bearer); status != http.StatusOK || !strings.Contains(body, metrics.Deliveries.Prom) {
		t.Fatalf("scrape with the token: %d %.200s", status, body)
	}

	t.Run("a token too short to be a secret is refused at start", func(t *testing.T) {
		_, err := server.New(server.Config{ControlToken: "short"})
		if err == nil || !strings.Contains(err.Error(), "at least 16") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestInvocationsEndAtTheirFunctionsTimeoutAsInLambda(t *testing.T) {
	t.Parallel()
	db := testenv.StartDynalite(t)
	cfg := onStore(twoOwners(), openDynamo(t, server.DynamoDB{Endpoint: db.Endpoint, Table: "timeouts", CreateTable: true}))
	cfg.FunctionTimeouts = map[string]time.Duration{
		server.ConnectFunction:   2 * time.Second,
		server.JobEventsFunction: 4 * time.Second, // JobEvents keeps 2 s back to answer
		server.S3UploadFunction:  2 * time.Second,
	}
	h := start(t, cfg)
	a := h.connect(t, "a", keyA)

	db.Pause(t) // the store accepts connections and answers nothing
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			db.Resume(t)
		}
	})
	// Each answer must come by the function's timeout; the bound below only
	// catches an invocation that hangs (it used to, forever).
	const slack = 5 * time.Second

	t.Run("JobEvents stops before its deadline and reports every record failed", func(t *testing.T) {
		begin := time.Now()
		status, _, body := h.post(t, http.MethodPost, "/2015-03-31/functions/JobEventsFunction/invocations",
			sqsBatch(envelope(ownerA, "", seedJobProgress), envelope(ownerA, "", seedJobComplete), envelope(ownerB, "", seedError)), "", nil)
		// It gives up at its margin (2 s) before the deadline, so its answer
		// gets out before Lambda would time the invocation out.
		if took := time.Since(begin); took >= 4*time.Second {
			t.Errorf("answered after %v, not before its 4 s deadline", took)
		}
		if status != http.StatusOK || strings.Count(body, `"itemIdentifier"`) != 3 {
			t.Fatalf("got %d %s, want 200 and the three records failed", status, body)
		}
	})
	t.Run("an upload that runs past its timeout is answered as Lambda answers a timeout", func(t *testing.T) {
		begin := time.Now()
		resp := h.invoke(t, "S3UploadFunction", []byte(`{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"uploads/acct_A/x.pdf","size":1}}}]}`), nil)
		body, _ := io.ReadAll(resp.Body)
		if took := time.Since(begin); took > 2*time.Second+slack {
			t.Errorf("answered after %v", took)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Function-Error") != "Unhandled" ||
			string(body) != `{"errorMessage":"Task timed out after 2.00 seconds","errorType":"Sandbox.Timedout"}` {
			t.Fatalf("got %d %q %s", resp.StatusCode, resp.Header.Get("X-Amz-Function-Error"), body)
		}
	})
	t.Run("a connect fails at the connect function's timeout, not API Gateway's 29 s", func(t *testing.T) {
		begin := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, resp, err := h.dial(ctx, "late", keyA)
		if took := time.Since(begin); took > 2*time.Second+slack {
			t.Errorf("answered after %v", took)
		}
		if err == nil || resp == nil || resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("got %v, %v; want a 500 refusal", resp, err)
		}
	})

	db.Resume(t)
	resumed = true
	h.publishJobs(t, envelope(ownerA, "", seedJobComplete))
	nextIs(t, a, seedJobComplete)
}

func TestABadS3RecordIsSkippedAloneAndTheGoodOnesPublished(t *testing.T) {
	t.Parallel()
	h := start(t, twoOwners())
	a := h.connect(t, "a", keyA)
	record := func(key, size string) string {
		return fmt.Sprintf(`{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":%q,"size":%s,"sequencer":"00%d"}}}`, key, size, len(key)+len(size))
	}
	payload := `{"Records":[` + strings.Join([]string{
		record("uploads/acct_A/first.pdf", "10"),
		record("uploads/acct_A/huge.pdf", "1e20"),
		record("uploads/acct_A/quoted.pdf", `"5"`),
		record("uploads/acct_A/negative.pdf", "-1"),
		record("uploads/acct_A/fraction.pdf", "1.5"),
		record("uploads/acct_A/last.pdf", "20"),
	}, ",") + `]}`
	var res struct {
		Published int `json:"published"`
		Skipped   []struct {
			Key, Reason string
		} `json:"skipped"`
	}
	h.invokeJSON(t, "S3UploadFunction", []byte(payload), &res)
	if res.Published != 2 || len(res.Skipped) != 4 {
		t.Fatalf("got %+v, want 2 published and 4 skipped", res)
	}
	for i, key := range []string{"huge.pdf", "quoted.pdf", "negative.pdf", "fraction.pdf"} {
		if got := res.Skipped[i]; !strings.HasSuffix(got.Key, key) || !strings.Contains(got.Reason, "size") {
			t.Errorf("skipped[%d] = %+v, want %s with a reason about its size", i, got, key)
		}
	}
	nextIs(t, a, `{"type":"file_uploaded","name":"first.pdf","size":10}`)
	nextIs(t, a, `{"type":"file_uploaded","name":"last.pdf","size":20}`)
}

func TestAmbiguousJobEventsAreRefusedNotGuessed(t *testing.T) {
	t.Parallel()
	logs := &testenv.SyncBuffer{}
	cfg := twoOwners()
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	h := start(t, cfg)
	a := h.connect(t, "a", keyA)
	b := h.connect(t, "b", keyB)

	failed := h.publishJobs(t,
		`{"ownerId":"acct_B","ownerId":"acct_A","event":`+seedJobComplete+`}`,
		`{"ownerId":"acct_A","clientId":null,"event":`+seedJobComplete+`}`,
		`{"ownerId":"acct_A","event":{"type":"error","error":"x","code":"A","code":"B"}}`,
		envelope(ownerA, "", seedJobProgress),
		envelope(ownerB, "", seedError),
	)
	if strings.Join(failed, ",") != "m1,m2,m3" {
		t.Fatalf("failed records %v, want m1,m2,m3", failed)
	}
	nextIs(t, a, seedJobProgress)
	nextIs(t, b, seedError)
	for _, want := range []string{`duplicate key \"ownerId\"`, "clientId must not be null", `duplicate key \"code\"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log does not say %s:\n%s", want, logs.String())
		}
	}
}

func TestRequestValuesAreCutInTheLog(t *testing.T) {
	t.Parallel()
	logs := &testenv.SyncBuffer{}
	cfg := twoOwners()
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	cfg.OriginPatterns = []string{"app.example.com"}
	h := start(t, cfg)
	long := strings.Repeat("a", 512<<10)

	const requests = 20
	for range requests {
		resp, err := http.Get(h.base + "/" + long)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// A client id, an origin, a user agent and a function name as long.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, _, err := websocket.Dial(ctx, "ws://"+h.host+"/api/v1/ws/"+long[:100<<10]+"?token="+keyA, nil); err == nil {
		t.Fatal("a 100 KB client id was accepted")
	}
	hdr := http.Header{"Origin": {"https://" + long[:100<<10] + ".example"}, "User-Agent": {long[:100<<10]}}
	if _, _, err := websocket.Dial(ctx, "ws://"+h.host+"/api/v1/ws/c?token="+keyA, &websocket.DialOptions{HTTPHeader: hdr}); err == nil {
		t.Fatal("a foreign origin was accepted")
	}
	h.post(t, http.MethodPost, "/2015-03-31/functions/"+long[:100<<10]+"/invocations", "{}", "", nil)
	h.post(t, http.MethodPost, "/@connections/"+long[:100<<10], "x", "", nil)

	h.stop() // every request's line is written
	if size := len(logs.String()); size > 64<<10 {
		t.Fatalf("%d requests of ~512 KB wrote %d bytes of log", requests, size)
	}
	if !strings.Contains(logs.String(), "…[cut, 524289 bytes]") {
		t.Fatalf("the cut path is not marked as cut:\n%.2000s", logs.String())
	}
}

func TestATextMessageThatIsNotUTF8ClosesTheConnectionWith1007(t *testing.T) {
	t.Parallel()
	h := start(t, twoOwners())
	c := h.connect(t, "c", keyA)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte("{\"action\":\"ping\xff\"}")); err != nil {
		t.Fatal(err)
	}
	if ce := readClose(t, c); ce.Code != websocket.StatusInvalidFramePayloadData {
		t.Fatalf("closed with %v, want 1007", ce)
	}
	eventually(t, "the $disconnect", func() bool { return !h.hasRecord(t, ownerA, "c") })
}

func TestARefusedHandshakeClosesItsTCPConnection(t *testing.T) {
	t.Parallel()
	cfg := twoOwners()
	cfg.OriginPatterns = []string{"app.example.com"}
	cfg.Notify = notify.Config{ConnectRate: 0.001, ConnectBurst: 2}
	h := start(t, cfg)
	h.connect(t, "taken", keyB) // uses one of B's two connects; the 409 below the other

	handshake := func(path, origin string) string {
		req := "GET " + path + " HTTP/1.1\r\nHost: " + h.host + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		if origin != "" {
			req += "Origin: " + origin + "\r\n"
		}
		return req + "\r\n"
	}
	tests := []struct {
		name, request string
		status        int
	}{
		{"a bad client id (400)", handshake("/api/v1/ws/a%20b?token="+keyA, ""), http.StatusBadRequest},
		{"an unknown key (401)", handshake("/api/v1/ws/c?token=wsn_nope", ""), http.StatusUnauthorized},
		{"a foreign origin (403)", handshake("/api/v1/ws/c?token="+keyA, "https://evil.example"), http.StatusForbidden},
		{"a client id in use (409)", handshake("/api/v1/ws/taken?token="+keyB, ""), http.StatusConflict},
		{"a key over its connect rate (429)", handshake("/api/v1/ws/c?token="+keyB, ""), http.StatusTooManyRequests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", h.host, wait)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(wait))
			if _, err := io.WriteString(conn, tt.request); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(conn)
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !resp.Close {
				t.Fatalf("got %d, Connection: %q; want %d and the connection closed", resp.StatusCode, resp.Header.Get("Connection"), tt.status)
			}
			// The server ends the connection: the next read sees EOF, not
			// the deadline.
			if n, err := r.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("after the refusal, read %d bytes, %v; want EOF", n, err)
			}
		})
	}
}
