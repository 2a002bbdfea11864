package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/wsnotify/wsnotify/infra/iamcheck"
	"github.com/wsnotify/wsnotify/infra/openapi"
	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/publishapi"
	"github.com/wsnotify/wsnotify/shared/store"
	"github.com/wsnotify/wsnotify/shared/store/dynamo"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// binariesBackend is where the Lambda binaries keep their table: the
// store on it, its endpoint and name, and each function's environment
// given the Management API endpoint it pushes to.
type binariesBackend struct {
	st              *dynamo.Store
	endpoint, table string
	functionEnv     func(id, management string) []string
	// started, if set, is told of the binaries once they run.
	started func(management string, lambdas map[string]*testenv.Lambda)
}

// enforcedIAM is the IAM-enforcing moto of env: each binary holds the keys
// of an IAM user with exactly its role, and gets extra in its environment.
// PublishFunction's invokes of FanoutFunction go to this set's fan-out
// binary, through the proxy that holds them to its role.
func enforcedIAM(env *iamcheck.Env, extra ...string) binariesBackend {
	return binariesBackend{
		st: dynamo.New(env.DynamoDB(), iamcheck.TableName), endpoint: env.Endpoint, table: iamcheck.TableName,
		functionEnv: func(id, management string) []string {
			return env.FunctionEnv(id, append([]string{"MANAGEMENT_API_ENDPOINT=" + management,
				"AWS_ENDPOINT_URL_LAMBDA=" + env.LambdaEndpoint(management)}, extra...)...)
		},
		started: func(management string, lambdas map[string]*testenv.Lambda) {
			env.ServeFanout(management, lambdas["FanoutFunction"].URL)
		},
	}
}

// dynaliteTable is a fresh dynalite holding the template's table, for a
// suite that measures rather than checks grants: moto, a Python server,
// takes some 40 times longer to write a large history.
func dynaliteTable(t *testing.T, table string) binariesBackend {
	endpoint := testenv.Dynalite(t)
	return binariesBackend{
		st: dynamo.New(testenv.Table(t, endpoint, table), table), endpoint: endpoint, table: table,
		functionEnv: func(_, management string) []string {
			return testenv.FunctionEnv(table, endpoint, management)
		},
	}
}

// startBinaries runs the five Lambda binaries under the Runtime Interface
// Emulator on the IAM-enforcing moto of env (each with the keys of an IAM
// user holding exactly its role), its table holding key for owner, pushing
// through local mode's Management API, and local mode in front of them with
// --function-endpoint. It returns local mode's address, the table's store
// and the emulators.
func startBinaries(ctx context.Context, t *testing.T, env *iamcheck.Env, key, owner string, extra ...string) (string, *dynamo.Store, map[string]*testenv.Lambda) {
	t.Helper()
	return startBinariesOn(ctx, t, enforcedIAM(env, extra...), key, owner, func(stageURL string) string { return stageURL })
}

// startBinariesOn is startBinaries on a backend of the caller's choosing,
// with the functions' Management API endpoint of its choosing: management
// gets local mode's stage URL and returns the endpoint to give them (a
// stand-in in front of it).
func startBinariesOn(ctx context.Context, t *testing.T, b binariesBackend, key, owner string, management func(stageURL string) string) (string, *dynamo.Store, map[string]*testenv.Lambda) {
	t.Helper()
	st := b.st
	if err := st.PutKey(ctx, auth.Key{Hash: auth.Hash(key), OwnerID: owner, Name: "test", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// The functions push to local mode's stage URL, so its listener is
	// opened before they start, and local mode served on it after them.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	stageURL := management("http://" + addr + "/" + iamcheck.Stage)
	lambdas := testenv.StartFunctionsEach(t, func(id string) []string { return b.functionEnv(id, stageURL) })
	if b.started != nil {
		b.started(stageURL, lambdas)
	}
	// Local mode on the functions' table, with the key the table already
	// holds: a restart with the same --api-key must work.
	args := []string{"--addr", addr, "--dynamodb-endpoint", b.endpoint, "--table", b.table, "--api-key", key + "=" + owner}
	for name, l := range lambdas {
		args = append(args, "--function-endpoint", name+"="+l.URL)
	}
	if got := runLocalModeOn(t, l, nil, args...).addr; got != addr {
		t.Fatalf("local mode listens on %s, want %s", got, addr)
	}
	return addr, st, lambdas
}

// TestTheLambdaBinariesUnderEnforcedIAM runs the seed's end-to-end suite and
// the resume suite through the built binaries on moto with IAM enforced,
// each binary holding exactly its role as the SAM transform writes it, and
// then holds every role to what its binary did: a call the role does not
// grant fails, naming the function and the action, and so does a grant no
// call used. A third part makes the calls the two suites do not: a connect
// with a signed token (the token secret) and a job record that can never
// succeed (the job dead-letter queue).
func TestTheLambdaBinariesUnderEnforcedIAM(t *testing.T) {
	t.Parallel()
	env := iamcheck.Start(t)
	t.Run("suites", func(t *testing.T) {
		t.Run("seed client", func(t *testing.T) { t.Parallel(); seedClientSuite(t, env) })
		t.Run("resume", func(t *testing.T) { t.Parallel(); resumeSuite(t, env) })
		t.Run("signed token and dead letter", func(t *testing.T) { t.Parallel(); tokenAndDeadLetterSuite(t, env) })
	})
	env.Check(t)
}

// seedClientSuite runs the cloud's code path on one machine: the five
// Lambda binaries under the Runtime Interface Emulator on one table,
// pushing through local mode's Management API, and local mode in front of
// them with --function-endpoint, serving the seed's Node client and
// forwarding its Invoke API to the binaries.
func seedClientSuite(t *testing.T, env *iamcheck.Env) {
	const key, owner = "wsn_lambda_test_key", "acct_lambda"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// HANDOFF_ABOVE=0: PublishFunction hands every publish to the fanout
	// binary, which posts to the seed client.
	addr, st, lambdas := startBinaries(ctx, t, env, key, owner, "HANDOFF_ABOVE=0")

	client := startSeedClient(t, addr, key)
	t.Run("the jobevents and s3upload binaries deliver every event type", func(t *testing.T) {
		fireSeedEvents(t, addr, owner)
		client.expectSeedEvents(t)
	})
	t.Run("the default binary answers a ping with pong", func(t *testing.T) {
		client.send(t, `{"action":"ping"}`)
		if ev := client.event(t, "pong"); ev["type"] != "pong" {
			t.Fatalf("got %v, want pong", ev)
		}
	})
	t.Run("the publish binary publishes once per key and answers presence", func(t *testing.T) {
		body := fmt.Sprintf(`{"ownerId":%q,"idempotencyKey":"iam-1","event":%s}`, owner, seedEvents["job_complete"])
		var results [2]struct {
			ID        string
			Seq       float64
			Duplicate bool
		}
		for i := range results {
			resp := invokeAPI(t, addr, "POST", "/v1/publish", body)
			var ans struct{ Results []json.RawMessage }
			if resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &ans) != nil || len(ans.Results) != 1 || json.Unmarshal(ans.Results[0], &results[i]) != nil {
				t.Fatalf("publish %d answered %d %s", i+1, resp.StatusCode, resp.Body)
			}
		}
		if first, again := results[0], results[1]; first.Duplicate || !again.Duplicate || again.ID != first.ID || again.Seq != first.Seq {
			t.Fatalf("a retry with the same key answered %+v after %+v", again, first)
		}
		if ev := client.event(t, "job_complete"); ev["id"] != results[0].ID || ev["seq"] != results[0].Seq {
			t.Fatalf("got %v, want the published job_complete", ev)
		}
		resp := invokeAPI(t, addr, "GET", "/v1/owners/"+owner+"/connections", "")
		if resp.StatusCode != 200 || !strings.Contains(resp.Body, `"count":1`) {
			t.Fatalf("presence answered %d %s", resp.StatusCode, resp.Body)
		}
	})
	t.Run("the connect binary stored the connection, and the disconnect binary removes it", func(t *testing.T) {
		records := func() int {
			conns, err := st.ListConnections(ctx, owner, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return len(conns)
		}
		if n := records(); n != 1 {
			t.Fatalf("%d connection records of %s, want 1", n, owner)
		}
		client.close(t)
		defer func() {
			if t.Failed() {
				t.Logf("disconnect output:\n%s", lambdas["DisconnectFunction"].Output)
			}
		}()
		testenv.Eventually(t, 20*time.Second, "the record's removal after the close", func() bool { return records() == 0 })
	})
	t.Run("every function ran in its binary", func(t *testing.T) {
		for name, l := range lambdas {
			// The emulator logs each invocation as Lambda does.
			if !strings.Contains(l.Output.String(), "START RequestId:") {
				t.Errorf("%s was never invoked on its endpoint; output:\n%s", name, l.Output)
			}
		}
	})
}

// tokenAndDeadLetterSuite makes the calls the seed and resume suites do
// not: a connect with a signed token, which reads the token secret; a
// connect that takes over a client id from a gone connection; a job
// record that can never succeed, which goes to the job dead-letter queue
// with its reason; and publishes to an owner whose record names a
// connection that is gone (410), whose record each publishing function
// removes.
func tokenAndDeadLetterSuite(t *testing.T, env *iamcheck.Env) {
	const key, owner = "wsn_iam_token_key", "acct_iam_token"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addr, st, _ := startBinaries(ctx, t, env, key, owner, "HANDOFF_ABOVE=2")

	token, err := auth.MintToken(env.TokenSecret, owner, 5*time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := dialLocal(t, addr, "signed", token)
	_ = c.CloseNow()

	// A connect that finds its owner at the cap, which one connection of an
	// expired signed token holds: the connect lists the owner's records,
	// closes that connection (gone already here) and removes its record.
	// The signed connection's $disconnect runs after its close: the count
	// is set once that has given its place back.
	testenv.Eventually(t, 20*time.Second, "the signed connection's disconnect", func() bool {
		n, err := st.ConnectionCount(ctx, owner)
		if err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
	expired := store.Connection{OwnerID: owner, ClientID: "expired-token", ConnectionID: "RXhwaXJlZFRva2Vu",
		ConnectedAt: ago(time.Hour), TokenExpiresAt: ago(50 * time.Minute), ExpiresAt: ago(time.Hour).Add(2 * time.Hour)}
	if err := st.PutConnection(ctx, expired, expired.ConnectedAt); err != nil {
		t.Fatal(err)
	}
	fillOwner(ctx, t, st, owner, notify.DefaultMaxConnectionsPerOwner)
	c = dialLocal(t, addr, "after-expired", token)
	_ = c.CloseNow()
	if _, err := st.FindConnection(ctx, expired.ConnectionID); err == nil {
		t.Fatal("the expired token's connection is still found by its id")
	}
	fillOwner(ctx, t, st, owner, 0)

	// A take-over: the client id is held by a record whose connection is
	// gone (410), so the connect replaces the record and deletes the gone
	// connection's id item.
	held := store.Connection{OwnerID: owner, ClientID: "taken-over", ConnectionID: "SGVsZENvbm5lY3Q=", ConnectedAt: ago(time.Minute), ExpiresAt: ago(time.Minute).Add(2 * time.Hour)}
	if err := st.PutConnection(ctx, held, held.ConnectedAt); err != nil {
		t.Fatal(err)
	}
	c = dialLocal(t, addr, "taken-over", key)
	_ = c.CloseNow()
	if _, err := st.FindConnection(ctx, held.ConnectionID); err == nil {
		t.Fatal("the taken-over connection is still found by its id")
	}

	body, _ := json.Marshal(map[string]any{"ownerId": owner, "event": map[string]any{"type": "job_started", "jobId": "j"}})
	bad, _ := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{{MessageId: "never", Body: string(body), Attributes: map[string]string{"MessageGroupId": "j"}}}})
	var resp events.SQSEventResponse
	invoke(t, addr, "JobEventsFunction", bad, &resp)
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("the invalid record was reported failed, not dead-lettered: %+v", resp.BatchItemFailures)
	}
	out, err := env.SQS().ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(env.JobDeadLetterQueueURL), MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 || !strings.Contains(aws.ToString(out.Messages[0].Body), "job_started") {
		t.Fatalf("the job dead-letter queue holds %+v, want the invalid record", out.Messages)
	}

	job, _ := json.Marshal(map[string]any{"ownerId": owner, "event": json.RawMessage(seedEvents["job_progress"])})
	jobs, _ := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{{MessageId: "to-gone", Body: string(job)}}})
	upload := fmt.Sprintf(`{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"uploads"},"object":{"key":"uploads/%s/gone.pdf","size":1,"eTag":"e","sequencer":"02"}}}]}`, owner)
	publish, _ := json.Marshal(apiRequest("POST", "/v1/publish", string(job)))
	for function, payload := range map[string][]byte{"JobEventsFunction": jobs, "S3UploadFunction": []byte(upload), "PublishFunction": publish} {
		past := time.Now().Add(-time.Hour)
		gone := store.Connection{OwnerID: owner, ClientID: "gone", ConnectionID: "R29uZUNvbm5lY3Q=", ConnectedAt: past, ExpiresAt: past.Add(2 * time.Hour)}
		if err := st.PutConnection(ctx, gone, past); err != nil {
			t.Fatal(err)
		}
		var answer any
		invoke(t, addr, function, payload, &answer)
		conns, err := st.ListConnections(ctx, owner, time.Now())
		if err != nil || len(conns) != 0 {
			t.Fatalf("after %s published to a gone connection its record is %+v (%v), want removed", function, conns, err)
		}
	}

	// Above HANDOFF_ABOVE=2: PublishFunction hands the publish to the
	// fanout binary, which removes the 3 gone records, gives their count
	// back (counted here, as connects count them) and corrects the count.
	past := time.Now().Add(-time.Hour)
	for i := range 3 {
		gone := store.Connection{OwnerID: owner, ClientID: fmt.Sprint("gone-", i), ConnectionID: fmt.Sprintf("R29uZUJpZw%d=", i), ConnectedAt: past, ExpiresAt: past.Add(2 * time.Hour)}
		if err := st.PutConnection(ctx, gone, past); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.ReserveConnection(ctx, owner, 100); err != nil {
		t.Fatal(err)
	}
	var answer any
	invoke(t, addr, "PublishFunction", publish, &answer)
	if conns, err := st.ListConnections(ctx, owner, time.Now()); err != nil || len(conns) != 0 {
		t.Fatalf("after a handed-off publish to 3 gone connections their records are %+v (%v), want removed", conns, err)
	}
}

// apiRequest is the payload format 2.0 event the HTTP API sends
// PublishFunction for a request to one of its two routes.
func apiRequest(method, path, body string) events.APIGatewayV2HTTPRequest {
	req := events.APIGatewayV2HTTPRequest{Version: "2.0", RawPath: path, Body: body,
		RouteKey: publishapi.RoutePublish, Headers: map[string]string{"content-type": "application/json"}}
	if owner, ok := strings.CutPrefix(path, "/v1/owners/"); ok {
		req.RouteKey = publishapi.RouteConnections
		req.PathParameters = map[string]string{"ownerId": strings.TrimSuffix(owner, "/connections")}
	}
	req.RequestContext.RouteKey, req.RequestContext.Stage = req.RouteKey, "$default"
	req.RequestContext.HTTP.Method, req.RequestContext.HTTP.Path = method, path
	return req
}

// invokeAPI invokes PublishFunction through local mode's Invoke API with
// the HTTP API's event for a request, and holds its answer to
// docs/openapi.yaml.
func invokeAPI(t *testing.T, addr, method, path, body string) events.APIGatewayV2HTTPResponse {
	t.Helper()
	payload, _ := json.Marshal(apiRequest(method, path, body))
	var resp events.APIGatewayV2HTTPResponse
	invoke(t, addr, "PublishFunction", payload, &resp)
	if err := openapi.CheckResponse(method, path, resp.StatusCode, []byte(resp.Body)); err != nil {
		t.Error(err)
	}
	return resp
}

// ago returns the time d ago.
func ago(d time.Duration) time.Time { return time.Now().Add(-d) }

// fillOwner sets owner's connection count to n, whatever it is, trying
// again when a disconnect changes it in between.
func fillOwner(ctx context.Context, t *testing.T, st *dynamo.Store, owner string, n int) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, fmt.Sprintf("the connection count of %s set to %d", owner, n), func() bool {
		was, err := st.ConnectionCount(ctx, owner)
		if err == nil {
			err = st.CorrectConnectionCount(ctx, owner, was, n)
		}
		if err != nil && !errors.Is(err, store.ErrConditionFailed) {
			t.Fatalf("set the connection count of %s to %d: %v", owner, n, err)
		}
		return err == nil
	})
}
