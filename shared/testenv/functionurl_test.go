package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func TestTheFunctionURLHandsASignedRequestToTheFunctionAsItsEvent(t *testing.T) {
	var got []map[string]any
	fn := &FunctionURL{
		Verifier: SigV4Verifier{AccessKey: "AKIDEXAMPLE", SecretKey: "secret", Region: "eu-west-1", Service: "lambda", SignedPayload: true},
		Account:  "123456789012", CallerAccount: "210987654321", CallerARN: "arn:aws:iam::210987654321:role/backend",
		Invoke: func(_ context.Context, event []byte) ([]byte, error) {
			var ev map[string]any
			if err := json.Unmarshal(event, &ev); err != nil {
				return nil, err
			}
			got = append(got, ev)
			return []byte(`{"statusCode":201,"headers":{"X-Answer":"yes"},"body":"{\"ok\":true}"}`), nil
		},
	}
	srv := httptest.NewServer(fn)
	defer srv.Close()
	const host = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws"
	send := func(sign bool) *http.Response {
		body := `{"messages":[]}`
		r, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/publish?x=1", strings.NewReader(body))
		r.Host = host
		r.Header.Set("Content-Type", "application/json")
		if sign {
			sum := sha256.Sum256([]byte(body))
			r.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
			creds := aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret"}
			if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), "lambda", "eu-west-1", time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := send(false); resp.StatusCode != http.StatusForbidden || len(got) != 0 {
		t.Fatalf("an unsigned request: %d, %d invocations", resp.StatusCode, len(got))
	}
	resp := send(true)
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("X-Answer") != "yes" || string(answer) != `{"ok":true}` {
		t.Fatalf("answer %d %v %s", resp.StatusCode, resp.Header, answer)
	}
	ev := got[0]
	rc := ev["requestContext"].(map[string]any)
	iam := rc["authorizer"].(map[string]any)["iam"].(map[string]any)
	httpCtx := rc["http"].(map[string]any)
	headers := ev["headers"].(map[string]any)
	for what, pair := range map[string][2]any{
		"routeKey":    {ev["routeKey"], "$default"},
		"context's":   {rc["routeKey"], "$default"},
		"stage":       {rc["stage"], "$default"},
		"version":     {ev["version"], "2.0"},
		"rawPath":     {ev["rawPath"], "/v1/publish"},
		"query":       {ev["rawQueryString"], "x=1"},
		"body":        {ev["body"], `{"messages":[]}`},
		"base64":      {ev["isBase64Encoded"], false},
		"method":      {httpCtx["method"], "POST"},
		"domainName":  {rc["domainName"], host},
		"apiId":       {rc["apiId"], "abcdefghijklmnopqrstuvwxyz012345"},
		"userArn":     {iam["userArn"], "arn:aws:iam::210987654321:role/backend"},
		"host header": {headers["host"], host},
		"no auth":     {headers["authorization"], nil},
	} {
		if pair[0] != pair[1] {
			t.Errorf("%s: %v, want %v", what, pair[0], pair[1])
		}
	}
}
