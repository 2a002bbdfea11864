package publisher_test

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/wsnotify/wsnotify/clients/go/publish"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// at is srv's URL with host in place of its address: test/publish.mjs,
// told to resolve every host to 127.0.0.1, reaches srv there.
func at(srv *httptest.Server, host string) string {
	u, _ := url.Parse(srv.URL)
	return "http://" + host + ":" + u.Port()
}

var nodeMessage = []map[string]any{{"ownerId": "acct_42", "idempotencyKey": "job_f-1",
	"event": map[string]any{"type": "job_progress", "jobId": "job_f", "progress": 50, "processedCount": 1, "totalCount": 2}}}

func TestTheNodeHTTPPublisherSignsForLambdaAtAFunctionURLAndForExecuteAPIElsewhere(t *testing.T) {
	for _, tc := range []struct {
		name, host, region, service, other string
	}{
		{"function URL, region given", testenv.FunctionURLHost, "eu-west-1", "lambda", "execute-api"},
		{"function URL, region left out", testenv.FunctionURLHost, "", "lambda", "execute-api"},
		{"HTTP API", testenv.HTTPAPIHost, "eu-west-1", "execute-api", "lambda"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reject := testenv.ExampleKeyVerifier(tc.other)
			stub := &signedStub{verifier: testenv.ExampleKeyVerifier(tc.service), reject: &reject}
			srv := httptest.NewServer(stub)
			defer srv.Close()
			cmd := map[string]any{"endpoint": at(srv, tc.host) + "/", "resolveTo": "127.0.0.1", "messages": nodeMessage}
			if tc.region != "" {
				cmd["region"] = tc.region
			}
			env := []string{"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
				"AWS_SESSION_TOKEN=session-token-1", "AWS_REGION=us-east-1"} // the function URL's own region wins
			if a := runPublisher(t, cmd, env...); a.Error != nil {
				t.Fatalf("publish: %+v (refusals %v)", a.Error, stub.refusals)
			}
			delete(cmd, "messages")
			cmd["connections"] = "acct_42"
			if a := runPublisher(t, cmd, env...); a.Error != nil {
				t.Fatalf("connections: %+v (refusals %v)", a.Error, stub.refusals)
			}
			stub.mu.Lock()
			defer stub.mu.Unlock()
			if len(stub.rejectSaid) != 2 {
				t.Fatalf("%d requests, want 2", len(stub.rejectSaid))
			}
			for i, why := range stub.rejectSaid {
				if why == "" {
					t.Errorf("request %d verifies for %q too: the test shows nothing", i, tc.other)
				}
			}
		})
	}
}

func TestTheNodeHTTPPublisherRefusesAFunctionURLOfAnotherRegion(t *testing.T) {
	reject := testenv.ExampleKeyVerifier("execute-api")
	stub := &signedStub{verifier: testenv.ExampleKeyVerifier("lambda"), reject: &reject}
	srv := httptest.NewServer(stub)
	defer srv.Close()
	a := runPublisher(t, map[string]any{"endpoint": at(srv, testenv.FunctionURLHost), "resolveTo": "127.0.0.1", "region": "us-east-1",
		"messages": nodeMessage}, credentialsEnv...)
	if a.Error == nil || a.Error.Name != "TypeError" || !strings.Contains(a.Error.Message, "function URL in eu-west-1") {
		t.Errorf("%+v", a.Error)
	}
	stub.mu.Lock()
	defer stub.mu.Unlock()
	if len(stub.rejectSaid) != 0 {
		t.Errorf("%d requests sent", len(stub.rejectSaid))
	}
}

// TestWhatTheNodePublisherSendsToTheFunctionURLIsPublishedByPublishFunction
// needs shared/publishapi.HandleLambda to route a function URL's events
// (routeKey "$default") by method and rawPath.
func TestWhatTheNodePublisherSendsToTheFunctionURLIsPublishedByPublishFunction(t *testing.T) {
	pushed, fn := testenv.PublishFunctionURL(t, "acct_42", "acct_7")
	srv := httptest.NewServer(fn)
	defer srv.Close()
	messages := []map[string]any{nodeMessage[0], {"ownerId": "acct_7",
		"event": map[string]any{"type": "job_complete", "jobId": "job_g", "status": "completed", "organized": 2, "failed": 0}}}
	a := runPublisher(t, map[string]any{"endpoint": at(srv, testenv.FunctionURLHost) + "/", "resolveTo": "127.0.0.1", "messages": messages}, credentialsEnv...)
	if a.Error != nil {
		t.Fatalf("%+v", a.Error)
	}
	var results []publish.Result
	_ = json.Unmarshal(a.OK, &results)
	mine, theirs := pushed.Sent("conn-acct_42"), pushed.Sent("conn-acct_7")
	if len(results) != 2 || len(mine) != 1 || len(theirs) != 1 || results[0].Delivered != 1 {
		t.Fatalf("results %s; pushed %v and %v", a.OK, mine, theirs)
	}
	for i, data := range []string{mine[0], theirs[0]} {
		var got map[string]any
		if err := json.Unmarshal([]byte(data), &got); err != nil || got["id"] != results[i].ID {
			t.Errorf("push %d: %s, answered %+v", i, data, results[i])
		}
	}
	who := runPublisher(t, map[string]any{"endpoint": at(srv, testenv.FunctionURLHost), "resolveTo": "127.0.0.1", "connections": "acct_42"}, credentialsEnv...)
	var p publish.Presence
	if err := json.Unmarshal(who.OK, &p); err != nil || p.Count != 1 || p.Clients[0].ClientID != "tab-1" {
		t.Errorf("presence %s %+v", who.OK, who.Error)
	}
}
