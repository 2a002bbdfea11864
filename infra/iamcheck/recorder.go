package iamcheck

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Call is one AWS request that passed the recording proxy.
type Call struct {
	// KeyID is the access key id it was signed with.
	KeyID string
	// Action is the IAM action, e.g. dynamodb:UpdateItem.
	Action string
	// Resources are the ARNs it acted on (a table, its index, a queue, a
	// secret).
	Resources []string
	// Status is moto's answer; Message its body when it refused (403).
	Status  int
	Message string
}

// localKeyID is the access key local mode (infra/awsconf) signs with in
// front of a local endpoint: the proxy signs its requests again with the
// test's identity, since local mode stands in for API Gateway and the
// operator's tools, not for a function.
const localKeyID = "local"

// recorder is the proxy in front of moto.
type recorder struct {
	url     string
	proxy   *httputil.ReverseProxy
	admin   Keys
	secrets map[string]string // secret name -> ARN

	// dynamo forwards one DynamoDB request at a time. moto applies an
	// update as a read and then a write, with no lock between them: two
	// concurrent ADDs to one item can both return the same value (seen: 2
	// of 1,600 with 16 writers), which DynamoDB, atomic per item, never
	// does, and which would give two events one seq.
	dynamo sync.Mutex

	mu  sync.Mutex
	log []Call
}

func newRecorder(t testing.TB, moto string, admin Keys, secrets map[string]string) *recorder {
	target, err := url.Parse(moto)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{proxy: httputil.NewSingleHostReverseProxy(target), admin: admin, secrets: secrets}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

func (r *recorder) calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Call(nil), r.log...)
}

// credential finds the access key id and service of a SigV4 request.
var credential = regexp.MustCompile(`Credential=([^/]+)/[^/]+/[^/]+/([^/]+)/`)

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m := credential.FindStringSubmatch(req.Header.Get("Authorization"))
	if m == nil {
		http.Error(w, "iamcheck: an unsigned request", http.StatusForbidden)
		return
	}
	call := Call{KeyID: m[1]}
	call.Action, call.Resources = r.describe(m[2], req, body)
	if call.KeyID == localKeyID {
		if err := r.resign(req, body, m[2]); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	if m[2] == "dynamodb" {
		r.dynamo.Lock()
		defer r.dynamo.Unlock()
	}
	r.proxy.ServeHTTP(rec, req)
	call.Status = rec.status
	if rec.status == http.StatusForbidden {
		call.Message = rec.body.String()
	}
	r.mu.Lock()
	r.log = append(r.log, call)
	r.mu.Unlock()
}

// describe names the IAM action of a request to service (its SigV4
// signing name) and the resources it acts on.
func (r *recorder) describe(service string, req *http.Request, body []byte) (string, []string) {
	op := req.Header.Get("X-Amz-Target")
	if _, after, ok := strings.Cut(op, "."); ok {
		op = after
	}
	var in struct {
		TableName    string
		IndexName    string
		RequestItems map[string]json.RawMessage
		QueueUrl     string
		SecretId     string
	}
	_ = json.Unmarshal(body, &in)
	action := service + ":" + op
	var res []string
	switch service {
	case "dynamodb":
		tables := []string{in.TableName}
		if in.TableName == "" {
			tables = nil
			for name := range in.RequestItems {
				tables = append(tables, name)
			}
		}
		for _, name := range tables {
			arn := fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", Region, AccountID, name)
			if in.IndexName != "" {
				arn += "/index/" + in.IndexName
			}
			res = append(res, arn)
		}
	case "sqs":
		if in.QueueUrl != "" {
			res = append(res, queueARN(in.QueueUrl[strings.LastIndex(in.QueueUrl, "/")+1:]))
		}
	case "secretsmanager":
		arn := in.SecretId
		if a, ok := r.secrets[arn]; ok {
			arn = a
		}
		res = append(res, arn)
	}
	return action, res
}

// resign signs req (with body) again as the test's own identity.
func (r *recorder) resign(req *http.Request, body []byte, service string) error {
	req.Header.Del("Authorization")
	req.Header.Del("X-Amz-Security-Token")
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	creds := aws.Credentials{AccessKeyID: r.admin.ID, SecretAccessKey: r.admin.Secret}
	return v4.NewSigner().SignHTTP(context.Background(), creds, req, hash, service, Region, time.Now())
}

// statusWriter keeps the status, and the body of a refusal.
type statusWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == http.StatusForbidden && s.body.Len() < 2048 {
		s.body.Write(p)
	}
	return s.ResponseWriter.Write(p)
}
