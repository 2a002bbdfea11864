package functions_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/shared/metrics"
	"github.com/wsnotify/wsnotify/shared/metrics/emf/emftest"
	"github.com/wsnotify/wsnotify/shared/publishapi"
	"github.com/wsnotify/wsnotify/shared/store"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// TestThePublishBinaryHandsLargeFanoutsToTheFanoutBinary runs the built
// publish and fanout binaries, each under its emulator, the publish one
// with HANDOFF_ABOVE=2 and the Lambda SDK pointed at the fanout one's
// Invoke API: a publish to an owner of 3 connections is posted by the
// fanout binary, and its counts come back in the publish API's answer and
// in PublishFunction's figures; a publish to an owner of 2 is posted by
// the publish binary itself, with no invoke; with the fanout function
// gone, the pushes are answered failed.
func TestThePublishBinaryHandsLargeFanoutsToTheFanoutBinary(t *testing.T) {
	st, mgmt, env := startBackends(t, "wsnotify-handoff-test")
	ctx := context.Background()
	past := time.Now().Add(-time.Hour) // past the connect grace
	for owner, clients := range map[string]int{"acct_big": 3, "acct_small": 2} {
		for i := range clients {
			c := store.Connection{OwnerID: owner, ClientID: fmt.Sprint("tab-", i), ConnectionID: fmt.Sprintf("%s-conn-%d=", owner, i),
				ConnectedAt: past, ExpiresAt: past.Add(2 * time.Hour)}
			if err := st.PutConnection(ctx, c, past); err != nil {
				t.Fatal(err)
			}
		}
	}
	env = append(env, "LOG_LEVEL=debug", "METRICS_NAMESPACE="+metricsNamespace)
	fanout := testenv.StartLambda(t, testenv.Bootstrap(t, "fanout"), env...)
	invokeAPI, _ := strings.CutSuffix(fanout.URL, "/2015-03-31/functions/function/invocations")
	publish := testenv.StartLambda(t, testenv.Bootstrap(t, "publish"), append(env,
		"FANOUT_FUNCTION_NAME=function", "HANDOFF_ABOVE=2", "AWS_ENDPOINT_URL_LAMBDA="+invokeAPI)...)

	type result struct{ Delivered float64 }
	post := func(t *testing.T, owner, key string) (result, string) {
		t.Helper()
		body := fmt.Sprintf(`{"ownerId":%q,"idempotencyKey":%q,"event":{"type":"job_progress","jobId":"j1","progress":50,"processedCount":1,"totalCount":2}}`, owner, key)
		req := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: publishapi.RoutePublish, RawPath: "/v1/publish", Body: body,
			Headers: map[string]string{"content-type": "application/json"}}
		req.RequestContext.RouteKey, req.RequestContext.Stage = req.RouteKey, "$default"
		req.RequestContext.HTTP.Method, req.RequestContext.HTTP.Path = "POST", "/v1/publish"
		payload, _ := json.Marshal(req)
		resp, err := http.Post(publish.URL, "application/json", strings.NewReader(string(payload)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		answer := apiAnswer(t, "POST", "/v1/publish", out)
		var ans struct {
			Results []struct {
				ID        string
				Delivered float64
			}
		}
		if answer.StatusCode != 200 || json.Unmarshal([]byte(answer.Body), &ans) != nil || len(ans.Results) != 1 {
			t.Fatalf("publish answered %s\npublish:\n%s\nfanout:\n%s", out, publish.Output, fanout.Output)
		}
		r := ans.Results[0]
		return result{Delivered: r.Delivered}, r.ID
	}
	invocations := func() int { return strings.Count(fanout.Output.String(), "START RequestId:") }

	t.Run("an owner of 3 connections: the fanout binary posts to each", func(t *testing.T) {
		res, id := post(t, "acct_big", "big-1")
		if res.Delivered != 3 {
			t.Fatalf("answered %+v, want 3 delivered", res)
		}
		if n := invocations(); n != 1 {
			t.Fatalf("the fanout binary was invoked %d times, want 1\n%s\npublish:\n%s", n, fanout.Output, publish.Output)
		}
		for i := range 3 {
			got := mgmt.sent(t, fmt.Sprintf("acct_big-conn-%d=", i))
			if len(got) != 1 || !strings.Contains(got[0], `"id":"`+id+`"`) || !strings.Contains(got[0], `"seq":1`) {
				t.Fatalf("connection %d got %q, want the event with id %s and seq 1", i, got, id)
			}
		}
		if !strings.Contains(fanout.Output.String(), `"msg":"fanned out"`) {
			t.Errorf("the fanout binary logged no fan-out:\n%s", fanout.Output)
		}
	})
	t.Run("an owner of 2 connections: posted by the publish binary, no invoke", func(t *testing.T) {
		res, _ := post(t, "acct_small", "small-1")
		if res.Delivered != 2 || invocations() != 1 {
			t.Fatalf("answered %+v with %d fanout invocations, want 2 delivered and still 1", res, invocations())
		}
	})
	t.Run("each function's figures: the publish counted once, by PublishFunction", func(t *testing.T) {
		// The figures are written as each invocation ends: wait for both.
		var docs []emftest.Doc
		testenv.Eventually(t, 10*time.Second, "PublishFunction's figures of both publishes", func() bool {
			docs = emftest.Parse(t, publish.Output.String())
			return len(docs) > 0 && emftest.Sum(docs, emftest.Of(docs[0].Dims[metrics.DimFunction], metrics.Deliveries)) == 5
		})
		fn := docs[0].Dims[metrics.DimFunction]
		emftest.ExpectSums(t, docs,
			emftest.Want{Series: emftest.OfPath(fn, "api", metrics.EventsPublished), Sum: 2},
			emftest.Want{Series: emftest.Of(fn, metrics.Deliveries), Sum: 5})
		for _, d := range emftest.Parse(t, fanout.Output.String()) {
			f := d.Dims[metrics.DimFunction]
			if s := emftest.Sum([]emftest.Doc{d}, emftest.Of(f, metrics.Deliveries)); s != 0 {
				t.Errorf("the fanout binary counted %g deliveries, which PublishFunction counts", s)
			}
		}
	})
	t.Run("with the fanout function gone, the pushes are failed", func(t *testing.T) {
		fanout.Stop()
		res, _ := post(t, "acct_big", "big-2")
		if res.Delivered != 0 {
			t.Fatalf("answered %+v, want none delivered", res)
		}
		// The emulator copies the function's output as it comes: the line
		// may follow the answer.
		testenv.Eventually(t, 10*time.Second, "the publish binary's log of a failed hand-off of 3 pushes", func() bool {
			out := publish.Output.String()
			return strings.Contains(out, `"msg":"hand-off failed"`) && strings.Contains(out, `"failed":3`)
		})
		testenv.Eventually(t, 10*time.Second, "PublishFunction's figure of 3 failed pushes", func() bool {
			docs := emftest.Parse(t, publish.Output.String())
			return len(docs) > 0 && emftest.Sum(docs, emftest.Of(docs[0].Dims[metrics.DimFunction], metrics.PushesFailed)) == 3
		})
	})
}
