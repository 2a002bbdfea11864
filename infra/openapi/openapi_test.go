package openapi_test

import (
	"errors"
	"testing"

	"github.com/wsnotify/wsnotify/infra/openapi"
)

// TestCheckResponseHoldsAnswersToTheDocument: answers as the document
// describes them pass; each way of leaving it fails.
func TestCheckResponseHoldsAnswersToTheDocument(t *testing.T) {
	for _, tt := range []struct {
		name, method, path string
		status             int
		body               string
		ok                 bool
	}{
		{"a publish's results", "POST", "/v1/publish", 200, `{"results":[{"id":"evt_1","seq":3,"delivered":2},{"id":"evt_2","delivered":0}]}`, true},
		{"a duplicate", "POST", "/v1/publish", 200, `{"results":[{"id":"key_x","seq":3,"delivered":0,"duplicate":true}]}`, true},
		{"a refusal with results", "POST", "/v1/publish", 500, `{"code":"INTERNAL","error":"publish failed","results":[{"id":"a","seq":1,"delivered":1}]}`, true},
		{"presence", "GET", "/v1/owners/acct_42/connections", 200, `{"ownerId":"acct_42","count":1,"clients":[{"clientId":"tab","connectedAt":"2026-12-07T10:15:30Z"}]}`, true},
		{"an unknown route's 404", "GET", "/v2/elsewhere", 404, `{"code":"NOT_FOUND","error":"no route"}`, true},
		{"a field the schema has not", "POST", "/v1/publish", 200, `{"results":[{"id":"evt_1","seq":3,"delivered":2,"connectionId":"abc"}]}`, false},
		{"a seq of 0", "POST", "/v1/publish", 200, `{"results":[{"id":"evt_1","seq":0,"delivered":2}]}`, false},
		{"an unknown code", "POST", "/v1/publish", 400, `{"code":"OOPS","error":"x"}`, false},
		{"a reason on two lines", "POST", "/v1/publish", 400, `{"code":"INVALID_JSON","error":"a\nb"}`, false},
		{"a status the operation does not list", "GET", "/v1/owners/acct_42/connections", 409, `{"code":"IDEMPOTENCY_CONFLICT","error":"x"}`, false},
		{"a time that is not RFC 3339", "GET", "/v1/owners/acct_42/connections", 200, `{"ownerId":"acct_42","count":1,"clients":[{"clientId":"tab","connectedAt":"yesterday"}]}`, false},
		{"not JSON", "POST", "/v1/publish", 200, `results`, false},
		{"an unknown route answered 200", "GET", "/v2/elsewhere", 200, `{}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := openapi.CheckResponse(tt.method, tt.path, tt.status, []byte(tt.body))
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && !errors.Is(err, openapi.ErrOffContract) {
				t.Fatalf("err = %v, want ErrOffContract", err)
			}
		})
	}
}
