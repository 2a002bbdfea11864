package handler_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/handler"
	"github.com/wsnotify/wsnotify/shared/notify"
)

// FuzzParseAction: any client message gets an action or a BAD_REQUEST, and
// the error event the default route answers with is valid JSON.
func FuzzParseAction(f *testing.F) {
	for _, s := range []string{`{"action":"ping"}`, `{"action":null}`, `[]`, `{"action":"\u0000"}`, "\xff"} {
		f.Add(s, false)
	}
	f.Add("eyJhY3Rpb24iOiJwaW5nIn0=", true)
	f.Fuzz(func(t *testing.T, body string, binary bool) {
		msg, err := handler.ParseMessage(body, binary)
		if err != nil {
			if notify.ErrorCode(err) != notify.CodeInvalid {
				t.Fatalf("code %s for %q", notify.ErrorCode(err), body)
			}
			if !json.Valid([]byte(handler.ErrorJSON(err))) {
				t.Fatalf("error reply %q is not JSON", handler.ErrorJSON(err))
			}
			return
		}
		if binary || len(msg.Action) > 64 {
			t.Fatalf("accepted %q (binary %v)", body, binary)
		}
	})
}

// FuzzParseUploadKey: an accepted key always yields a valid owner and a
// non-empty file name that re-encodes to the same key.
func FuzzParseUploadKey(f *testing.F) {
	for _, k := range []string{"uploads/acct_42/newfile.pdf", "uploads/acct_42/My+Report+%282026%29.pdf", "uploads/acct_42/", "uploads/%2F/x", "uploads/a/%ZZ"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		up, err := handler.ParseUploadKey(key, handler.DefaultUploadPrefix)
		if err != nil {
			return
		}
		if !event.ValidOwnerID(up.OwnerID) || up.Name == "" || strings.HasSuffix(up.Name, "/") {
			t.Fatalf("accepted %q as %+v", key, up)
		}
		if up.Key != handler.DefaultUploadPrefix+up.OwnerID+"/"+up.Name {
			t.Fatalf("decoded key %q does not rebuild from owner %q and name %q", up.Key, up.OwnerID, up.Name)
		}
		if decoded, _ := url.QueryUnescape(key); decoded != up.Key {
			t.Fatalf("decoded %q, want %q", up.Key, decoded)
		}
	})
}

// FuzzConnectRequest: whatever the client_id and token (path or query), the
// connect handler answers 200 only for a valid client id and the right key,
// and otherwise one of the statuses the contract names — never 500.
func FuzzConnectRequest(f *testing.F) {
	f.Add("tab-1", sampleKey, true)
	f.Add("a/b", sampleKey, false)
	f.Add("tab-1", "", true)
	f.Add(strings.Repeat("a", 129), "wsn_x", false)
	f.Fuzz(func(t *testing.T, clientID, token string, inPath bool) {
		e := newEnv(t)
		req := events.APIGatewayWebsocketProxyRequest{QueryStringParameters: map[string]string{"token": token}}
		if inPath {
			req.PathParameters = map[string]string{"client_id": clientID}
		} else {
			req.QueryStringParameters["client_id"] = clientID
		}
		req.RequestContext.ConnectionID = "TWegAcC4EowCHnA="
		resp, err := handler.NewConnect(e.n, e.log, handler.Origins{}).Handle(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		want := 200
		switch {
		case !event.ValidClientID(clientID):
			want = 400
		case token != sampleKey:
			want = 401
		}
		if resp.StatusCode != want {
			t.Fatalf("client_id %q token %q: status %d, want %d", clientID, token, resp.StatusCode, want)
		}
		// Short tokens occur in any log by chance (digits of a timestamp).
		if len(token) >= 16 && strings.Contains(e.logs.String(), token) && !strings.Contains(clientID, token) {
			t.Fatalf("the token %q appears in the logs", token)
		}
	})
}
