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

	// granted holds a Lambda call to the caller's role (Env.granted).
	granted func(keyID, action, resource string) (function string, ok bool)

	mu      sync.Mutex
	log     []Call
	fanouts map[string]string // route -> the fan-out emulator's invoke URL
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
	if m[2] == "lambda" {
		r.invoke(w, req, body, call)
		return
	}
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

// serve sends the invokes that come by route to invokeURL.
func (r *recorder) serve(route, invokeURL string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fanouts == nil {
		r.fanouts = map[string]string{}
	}
	r.fanouts[route] = invokeURL
}

// invokePath is a Lambda Invoke through Env.LambdaEndpoint: its route and
// the function's name.
var invokePath = regexp.MustCompile(`^/lambda/([^/]+)/2015-03-31/functions/([^/]+)/invocations$`)

// invoke answers a Lambda call: an Invoke of FanoutFunctionName that the
// caller's role grants is sent to its route's fan-out emulator; one it
// does not grant is refused as IAM refuses it. The call is recorded.
func (r *recorder) invoke(w http.ResponseWriter, req *http.Request, body []byte, call Call) {
	m := invokePath.FindStringSubmatch(req.URL.EscapedPath())
	if m == nil {
		http.Error(w, "iamcheck: a Lambda call other than Invoke: "+req.URL.Path, http.StatusNotImplemented)
		return
	}
	route, _ := url.PathUnescape(m[1])
	name, _ := url.PathUnescape(m[2])
	arn := name
	if !strings.HasPrefix(name, "arn:") {
		arn = functionARN(name)
	}
	call.Action, call.Resources = "lambda:InvokeFunction", []string{arn}
	r.mu.Lock()
	target := r.fanouts[route]
	r.mu.Unlock()
	fn, ok := r.granted(call.KeyID, call.Action, arn)
	switch {
	case !ok:
		call.Status = http.StatusForbidden
		call.Message = fmt.Sprintf("User: %s is not authorized to perform: lambda:InvokeFunction on resource: %s", fn, arn)
		w.Header().Set("x-amzn-ErrorType", "AccessDeniedException")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(call.Status)
		_ = json.NewEncoder(w).Encode(map[string]string{"Type": "User", "message": call.Message})
	case name != FanoutFunctionName || target == "":
		call.Status = http.StatusNotFound
		w.Header().Set("x-amzn-ErrorType", "ResourceNotFoundException")
		w.WriteHeader(call.Status)
	default:
		resp, err := http.Post(target, "application/json", bytes.NewReader(body))
		if err != nil {
			call.Status = http.StatusBadGateway
			http.Error(w, err.Error(), call.Status)
			break
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// The emulator answers as Lambda does, a function error in its header.
		for _, h := range []string{"Content-Type", "X-Amz-Function-Error"} {
			if v := resp.Header.Get(h); v != "" {
				w.Header().Set(h, v)
			}
		}
		call.Status = resp.StatusCode
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(out)
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
