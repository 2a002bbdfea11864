package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func TestTheVerifierRefusesWhatTheSignatureDoesNotCover(t *testing.T) {
	verifier := SigV4Verifier{AccessKey: "AKIDEXAMPLE", SecretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", Region: "eu-west-1", Service: "execute-api"}
	creds := aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: "session-token-1"}
	signedRequest := func(body string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "https://api.example/v1/publish", strings.NewReader(body))
		sum := sha256.Sum256([]byte(body))
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), "execute-api", "eu-west-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if reason := verifier.Verify(signedRequest(`{"a":1}`), []byte(`{"a":1}`)); reason != "" {
		t.Fatalf("a request the SDK signed is refused: %s", reason)
	}
	tampered := map[string]func(r *http.Request) []byte{
		"another body":   func(r *http.Request) []byte { return []byte(`{"a":2}`) },
		"another path":   func(r *http.Request) []byte { r.URL.Path = "/v1/owners/x/connections"; return []byte(`{"a":1}`) },
		"another host":   func(r *http.Request) []byte { r.Host = "evil.example"; return []byte(`{"a":1}`) },
		"another token":  func(r *http.Request) []byte { r.Header.Set("X-Amz-Security-Token", "t2"); return []byte(`{"a":1}`) },
		"another method": func(r *http.Request) []byte { r.Method = http.MethodPut; return []byte(`{"a":1}`) },
	}
	for name, tamper := range tampered {
		r := signedRequest(`{"a":1}`)
		if reason := verifier.Verify(r, tamper(r)); reason == "" {
			t.Errorf("%s: accepted", name)
		}
	}
	wrongRegion := verifier
	wrongRegion.Region = "us-east-1"
	if wrongRegion.Verify(signedRequest(`{}`), []byte(`{}`)) == "" {
		t.Error("a signature for another region is accepted")
	}
}

func TestTheVerifierOfAFunctionURLWantsTheBodysHashSigned(t *testing.T) {
	verifier := SigV4Verifier{AccessKey: "AKIDEXAMPLE", SecretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", Region: "eu-west-1", Service: "lambda", SignedPayload: true}
	creds := aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	const body = `{"a":1}`
	sum := sha256.Sum256([]byte(body))
	hash := hex.EncodeToString(sum[:])
	signed := func(header string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "https://abc.lambda-url.eu-west-1.on.aws/v1/publish", strings.NewReader(body))
		if header != "" {
			r.Header.Set("X-Amz-Content-Sha256", header)
		}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hash, "lambda", "eu-west-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if reason := verifier.Verify(signed(hash), []byte(body)); reason != "" {
		t.Fatalf("the body's hash signed in its header is refused: %s", reason)
	}
	if verifier.Verify(signed(""), []byte(body)) == "" {
		t.Error("a POST without X-Amz-Content-Sha256 is accepted")
	}
	if verifier.Verify(signed("UNSIGNED-PAYLOAD"), []byte(body)) == "" {
		t.Error("an unsigned payload is accepted")
	}
	get := httptest.NewRequest(http.MethodGet, "https://abc.lambda-url.eu-west-1.on.aws/v1/owners/o/connections", nil)
	empty := sha256.Sum256(nil)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, get, hex.EncodeToString(empty[:]), "lambda", "eu-west-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if reason := verifier.Verify(get, nil); reason != "" {
		t.Errorf("a GET without a body is refused: %s", reason)
	}
}
