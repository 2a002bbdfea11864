package awssecrets

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/wsnotify/wsnotify/shared/auth"
)

const (
	secretName = "wsnotify/token-secrets"
	signing    = "new-secret-0123456789abcdefghijklmnopqrstuvwxyz"
	previous   = "old-secret-0123456789abcdefghijklmnopqrstuvwxyz"
)

// fakeSecretsManager speaks Secrets Manager's JSON protocol (awsJson1.1:
// POST /, X-Amz-Target secretsmanager.GetSecretValue) for one secret, so the
// real SDK client is tested against it rather than a stand-in for the SDK.
type fakeSecretsManager struct {
	calls atomic.Int64
	// answer returns the status and the body for one call.
	answer func(call int64) (int, string)
	// gate, when set, holds every answer until it is closed.
	gate chan struct{}
}

func (f *fakeSecretsManager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	call := f.calls.Add(1)
	if r.Method != http.MethodPost || r.URL.Path != "/" || r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" ||
		!strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		http.Error(w, "not a signed GetSecretValue call", http.StatusBadRequest)
		return
	}
	var in struct{ SecretId string }
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &in); err != nil || in.SecretId != secretName {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"__type":"ResourceNotFoundException","Message":"Secrets Manager can't find the specified secret."}`)
		return
	}
	if f.gate != nil {
		<-f.gate
	}
	status, answer := f.answer(call)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
}

func secretString(value string) string {
	b, _ := json.Marshal(map[string]any{"ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:" + secretName + "-AbCdEf", "Name": secretName, "SecretString": value, "VersionId": "v1"})
	return string(b)
}

// source returns a Source whose real SDK client talks to f.
func source(t *testing.T, f *fakeSecretsManager, secretID string) *Source {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	client := secretsmanager.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDLOCAL", "local", ""),
	}, func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.RetryMaxAttempts = 1
	})
	return New(client, secretID)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSourceReadsTheSecretOnceAndKeepsIt(t *testing.T) {
	f := &fakeSecretsManager{answer: func(int64) (int, string) {
		return http.StatusOK, secretString(`["` + signing + `", "` + previous + `"]`)
	}}
	s := source(t, f, secretName)
	for range 3 {
		got, err := s.TokenSecrets(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || string(got[0]) != signing || string(got[1]) != previous {
			t.Fatalf("secrets = %q, want the signing secret then the previous one", got)
		}
	}
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d GetSecretValue calls, want 1", n)
	}
}

func TestSourceSharesOneReadBetweenConcurrentFirstCalls(t *testing.T) {
	f := &fakeSecretsManager{gate: make(chan struct{}), answer: func(int64) (int, string) {
		return http.StatusOK, secretString(`["` + signing + `"]`)
	}}
	s := source(t, f, secretName)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := s.TokenSecrets(ctxT(t))
			errs <- err
		})
	}
	close(f.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d GetSecretValue calls for 20 concurrent first uses, want 1", n)
	}
}

func TestSourceRetriesAfterAFailedRead(t *testing.T) {
	f := &fakeSecretsManager{answer: func(call int64) (int, string) {
		if call == 1 {
			return http.StatusBadRequest, `{"__type":"DecryptionFailure","Message":"can't decrypt the protected secret text using the provided KMS key."}`
		}
		return http.StatusOK, secretString(`["` + signing + `"]`)
	}}
	s := source(t, f, secretName)
	_, err := s.TokenSecrets(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), "DecryptionFailure") || !strings.Contains(err.Error(), secretName) {
		t.Fatalf("first read: err = %v, want Secrets Manager's error naming the secret", err)
	}
	if errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("a failed read is a refusal: %v", err)
	}
	if got, err := s.TokenSecrets(ctxT(t)); err != nil || len(got) != 1 {
		t.Fatalf("second read = %q, %v; want the secret", got, err)
	}
}

func TestSourceRefusesMalformedSecretsWithoutQuotingThem(t *testing.T) {
	for name, tt := range map[string]struct{ answer, want string }{
		"a secret shorter than 32 bytes": {secretString(`["` + signing + `", "short-but-secret"]`), "token secret 2 of 2 is 16 bytes: at least 32"},
		"one secret per line":            {secretString(signing + "\n" + previous), "must be a JSON array of strings"},
		"a key/value secret":             {secretString(`{"secret":"` + signing + `"}`), "must be a JSON array of strings"},
		"a binary secret":                {`{"Name":"` + secretName + `","SecretBinary":"YmxvYg=="}`, "holds binary data"},
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeSecretsManager{answer: func(int64) (int, string) { return http.StatusOK, tt.answer }}
			_, err := source(t, f, secretName).TokenSecrets(ctxT(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), secretName) {
				t.Fatalf("err = %v, want %q naming the secret", err, tt.want)
			}
			for _, s := range []string{signing, previous, "short-but-secret"} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error %q quotes a secret", err)
				}
			}
		})
	}
	t.Run("an unknown secret", func(t *testing.T) {
		f := &fakeSecretsManager{answer: func(int64) (int, string) { return http.StatusOK, "" }}
		_, err := source(t, f, "no-such-secret").TokenSecrets(ctxT(t))
		if err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") || !strings.Contains(err.Error(), "no-such-secret") {
			t.Fatalf("err = %v, want ResourceNotFoundException naming the secret", err)
		}
	})
}

func TestSourceVerifiesTokensThroughTheVerifier(t *testing.T) {
	f := &fakeSecretsManager{answer: func(int64) (int, string) {
		return http.StatusOK, secretString(`["` + signing + `", "` + previous + `"]`)
	}}
	v := auth.NewTokenVerifier(source(t, f, secretName), auth.TokenConfig{})
	token, err := auth.MintToken([]byte(previous), "acct_42", time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if owner, err := v.Verify(ctxT(t), token); err != nil || owner != "acct_42" {
		t.Fatalf("Verify = %q, %v", owner, err)
	}
}
