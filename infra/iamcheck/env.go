package iamcheck

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/wsnotify/wsnotify/infra/template"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// The emulated account, as moto names it.
const (
	Region    = "us-east-1"
	AccountID = "123456789012"
	// Stage stands for the stage name and the API id in the roles'
	// Management API ARNs; those calls go to local mode, not to moto.
	Stage = "local"
)

// Names of the resources Start creates in moto.
const (
	TableName              = "wsnotify-iam"
	jobQueueName           = "wsnotify-job-events.fifo"
	jobDeadLetterQueueName = "wsnotify-job-events-dlq.fifo"
	uploadDeadLetterName   = "wsnotify-upload-dlq"
	SecretName             = "wsnotify/token-secrets"
	// FanoutFunctionName is FanoutFunction's name, which PublishFunction
	// invokes (FANOUT_FUNCTION_NAME); the recording proxy serves those
	// invokes (see LambdaEndpoint).
	FanoutFunctionName = "wsnotify-fanout"
)

// Keys are an IAM user's access keys.
type Keys struct{ ID, Secret string }

// Env is a moto server enforcing IAM, with the stack's table, queues and
// token secret, one IAM user per function holding its role, and the
// recording proxy the binaries reach it through.
type Env struct {
	// Endpoint is the recording proxy's URL: every AWS call goes there.
	Endpoint string
	// Roles are the functions' roles, by logical id.
	Roles map[string]Role
	// JobDeadLetterQueueURL is the job dead-letter queue's URL.
	JobDeadLetterQueueURL string
	// TokenSecret is the secret signed tokens are signed with (the only
	// one the token secret holds).
	TokenSecret []byte

	keys  map[string]Keys // by function
	admin Keys
	rec   *recorder
}

// Start starts moto, creates the stack's resources and users in it, turns
// IAM enforcement on and starts the recording proxy. It fails the test with
// a clear message where python3, moto or aws-sam-translator is missing.
func Start(t testing.TB) *Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	moto := testenv.Moto(t)
	setup := Keys{"setup", "setup"} // moto allows every request until enforcement is on
	cfg := awsConfig(setup)

	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(moto) })
	if err := template.CreateTable(ctx, db, TableName); err != nil {
		t.Fatalf("iamcheck: %v", err)
	}
	q := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(moto) })
	queues := map[string]string{} // name -> URL
	for _, name := range []string{jobQueueName, jobDeadLetterQueueName, uploadDeadLetterName} {
		attrs := map[string]string{}
		if strings.HasSuffix(name, ".fifo") {
			attrs[string(sqstypes.QueueAttributeNameFifoQueue)] = "true"
		}
		out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
		if err != nil {
			t.Fatalf("iamcheck: create queue %s: %v", name, err)
		}
		queues[name] = aws.ToString(out.QueueUrl)
	}
	secret := []byte("iamcheck-token-secret-of-32-bytes-or-more")
	list, _ := json.Marshal([]string{string(secret)})
	sm := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(moto) })
	created, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(SecretName), SecretString: aws.String(string(list))})
	if err != nil {
		t.Fatalf("iamcheck: create secret: %v", err)
	}

	tableARN := fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", Region, AccountID, TableName)
	values := Values{
		"AWS::Partition": "aws", "AWS::Region": Region, "AWS::AccountId": AccountID, "AWS::URLSuffix": "amazonaws.com",
		"ConnectionsTable": TableName, "ConnectionsTable.Arn": tableARN,
		"JobEventsQueue.Arn":           queueARN(jobQueueName),
		"JobEventsDeadLetterQueue.Arn": queueARN(jobDeadLetterQueueName),
		"S3UploadDeadLetterQueue.Arn":  queueARN(uploadDeadLetterName),
		"WebSocketApi":                 Stage, "StageName": Stage,
		"TokenSecretName": SecretName,
		"FanoutFunction":  FanoutFunctionName, "FanoutFunction.Arn": functionARN(FanoutFunctionName),
	}
	roles, err := LoadRoles(testenv.RepoRoot(t), values)
	if err != nil {
		t.Fatalf("iamcheck: %v", err)
	}
	e := &Env{Roles: roles, JobDeadLetterQueueURL: queues[jobDeadLetterQueueName], TokenSecret: secret, keys: map[string]Keys{}}
	iam := &iamAPI{endpoint: moto}
	e.admin = iam.user(t, "iamcheck-admin", []any{map[string]any{"Effect": "Allow", "Action": "*", "Resource": "*"}})
	for fn, role := range roles {
		e.keys[fn] = iam.user(t, fn, role.motoStatements())
	}

	e.rec = newRecorder(t, moto, e.admin, map[string]string{aws.ToString(created.Name): aws.ToString(created.ARN)})
	e.rec.granted = e.granted
	e.Endpoint = e.rec.url
	// From here on moto checks every request's signature and policy.
	resp, err := http.Post(moto+"/moto-api/reset-auth", "text/plain", strings.NewReader("0"))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("iamcheck: turn IAM enforcement on: %v %v", resp, err)
	}
	resp.Body.Close()
	return e
}

// functionARN is a Lambda function's ARN in the emulated account.
func functionARN(name string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", Region, AccountID, name)
}

// granted reports whether the function whose user holds keyID is allowed
// action on resource by its role, and names the function ("" for none).
func (e *Env) granted(keyID, action, resource string) (string, bool) {
	for fn, k := range e.keys {
		if k.ID == keyID {
			return fn, slices.ContainsFunc(e.Roles[fn].Statements, func(st Statement) bool { return st.grants(action, resource) })
		}
	}
	return "", false
}

// LambdaEndpoint is the Invoke API endpoint (AWS_ENDPOINT_URL_LAMBDA) of
// one set of binaries, named by route, any string unique to the set: the
// recording proxy, which sends their invokes of FanoutFunctionName to the
// URL ServeFanout gave for route. moto runs no Lambda function, so the
// proxy answers these calls itself, holding each to the caller's role as
// IAM would (a call the role does not grant is refused with 403), and
// records them for Check like the others.
func (e *Env) LambdaEndpoint(route string) string {
	return e.Endpoint + "/lambda/" + url.PathEscape(route)
}

// ServeFanout sends the invokes of FanoutFunctionName made through
// LambdaEndpoint(route) to invokeURL, the fan-out binary's emulator.
func (e *Env) ServeFanout(route, invokeURL string) {
	e.rec.serve(route, invokeURL)
}

// queueARN is the ARN moto gives the queue name in the emulated account.
func queueARN(name string) string {
	return fmt.Sprintf("arn:aws:sqs:%s:%s:%s", Region, AccountID, name)
}

// motoStatements is the role as a policy moto can enforce: resources of
// services moto authorizes against "*" are "*" (Check matches those).
func (r Role) motoStatements() []any {
	var out []any
	for _, st := range r.Statements {
		res := st.Resources
		if slices.ContainsFunc(st.Actions, func(a string) bool {
			return service(a) == "dynamodb" || service(a) == "secretsmanager"
		}) {
			res = []string{"*"}
		}
		out = append(out, map[string]any{"Effect": "Allow", "Action": st.Actions, "Resource": res})
	}
	return out
}

func awsConfig(k Keys) aws.Config {
	return aws.Config{Region: Region, Credentials: credentials.NewStaticCredentialsProvider(k.ID, k.Secret, "")}
}

// FunctionEnv is the environment of function fn's binary: its user's keys,
// every AWS endpoint at the recording proxy, the table, the token secret,
// the job dead-letter queue and the fan-out function, plus extra (the
// Lambda endpoint among them: LambdaEndpoint).
func (e *Env) FunctionEnv(fn string, extra ...string) []string {
	k, ok := e.keys[fn]
	if !ok {
		panic("iamcheck: no role for function " + fn)
	}
	return append([]string{
		"AWS_REGION=" + Region, "AWS_ACCESS_KEY_ID=" + k.ID, "AWS_SECRET_ACCESS_KEY=" + k.Secret, "AWS_SESSION_TOKEN=",
		"DYNAMODB_ENDPOINT=" + e.Endpoint, "AWS_ENDPOINT_URL_SQS=" + e.Endpoint, "AWS_ENDPOINT_URL_SECRETS_MANAGER=" + e.Endpoint,
		"TABLE_NAME=" + TableName, "TOKEN_SECRET_ID=" + SecretName, "JOB_DEAD_LETTER_QUEUE_URL=" + e.JobDeadLetterQueueURL,
		"FANOUT_FUNCTION_NAME=" + FanoutFunctionName,
	}, extra...)
}

// DynamoDB is a client for the table with the test's own (unrestricted)
// identity, for setting up keys and reading records.
func (e *Env) DynamoDB() *dynamodb.Client {
	return dynamodb.NewFromConfig(awsConfig(e.admin), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(e.Endpoint) })
}

// SQS is a client for the queues with the test's own identity.
func (e *Env) SQS() *sqs.Client {
	return sqs.NewFromConfig(awsConfig(e.admin), func(o *sqs.Options) { o.BaseEndpoint = aws.String(e.Endpoint) })
}

// iamAPI creates users in moto through IAM's query API (enforcement off).
type iamAPI struct{ endpoint string }

func (a *iamAPI) call(t testing.TB, form url.Values, out any) {
	t.Helper()
	form.Set("Version", "2010-05-08")
	req, _ := http.NewRequest(http.MethodPost, a.endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// moto routes by the credential scope's service.
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=setup/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("iamcheck: IAM %s: %v", form.Get("Action"), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("iamcheck: IAM %s: %d %s", form.Get("Action"), resp.StatusCode, body)
	}
	if out != nil {
		if err := xml.Unmarshal(body, out); err != nil {
			t.Fatalf("iamcheck: IAM %s: %v: %s", form.Get("Action"), err, body)
		}
	}
}

// user creates an IAM user holding statements and returns its keys.
func (a *iamAPI) user(t testing.TB, name string, statements []any) Keys {
	t.Helper()
	doc, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": statements})
	a.call(t, url.Values{"Action": {"CreateUser"}, "UserName": {name}}, nil)
	a.call(t, url.Values{"Action": {"PutUserPolicy"}, "UserName": {name}, "PolicyName": {"role"}, "PolicyDocument": {string(doc)}}, nil)
	var out struct {
		Key struct {
			ID     string `xml:"AccessKeyId"`
			Secret string `xml:"SecretAccessKey"`
		} `xml:"CreateAccessKeyResult>AccessKey"`
	}
	a.call(t, url.Values{"Action": {"CreateAccessKey"}, "UserName": {name}}, &out)
	if out.Key.ID == "" {
		t.Fatalf("iamcheck: no access key for %s", name)
	}
	return Keys{out.Key.ID, out.Key.Secret}
}

// Check holds each function's role to the calls its binary made so far,
// both ways, failing t for:
//   - a call moto refused (the role lacks the action), naming the function,
//     the action and moto's message;
//   - a call on a resource no statement of the role allows the action on;
//   - a granted action and resource that no call used, unless Lambda
//     itself uses it with the role (the managed policy's log writing, the
//     event source mapping's reads of its queue, the asynchronous
//     dead-letter send). Management API grants (execute-api) go to local
//     mode, not moto, and are checked by infra/template's tests instead.
func (e *Env) Check(t testing.TB) {
	t.Helper()
	byKey := map[string]string{}
	for fn, k := range e.keys {
		byKey[k.ID] = fn
	}
	calls := map[string][]Call{}
	for _, c := range e.rec.calls() {
		fn, ok := byKey[c.KeyID]
		switch {
		case c.KeyID == e.admin.ID || c.KeyID == localKeyID:
			continue
		case !ok:
			t.Errorf("a call to %s with an access key of no function (%q)", c.Action, c.KeyID)
			continue
		}
		calls[fn] = append(calls[fn], c)
		if c.Status == http.StatusForbidden {
			t.Errorf("%s: %s on %v was refused under enforced IAM, its role lacks it: %s", fn, c.Action, c.Resources, c.Message)
			continue
		}
		for _, r := range c.Resources {
			if !slices.ContainsFunc(e.Roles[fn].Statements, func(st Statement) bool { return st.grants(c.Action, r) }) {
				t.Errorf("%s: %s on %s is not granted by its role", fn, c.Action, r)
			}
		}
	}
	fns := make([]string, 0, len(e.Roles))
	for fn := range e.Roles {
		fns = append(fns, fn)
	}
	sort.Strings(fns)
	for _, fn := range fns {
		role := e.Roles[fn]
		for _, st := range role.Statements {
			for _, a := range st.Actions {
				if service(a) == "execute-api" {
					continue
				}
				for _, r := range st.Resources {
					if reason := role.usedByLambda(st, a, r); reason != "" {
						continue
					}
					used := slices.ContainsFunc(calls[fn], func(c Call) bool {
						return c.Status != http.StatusForbidden && Matches(a, c.Action, true) &&
							slices.ContainsFunc(c.Resources, func(cr string) bool { return Matches(r, cr, false) })
					})
					if !used {
						t.Errorf("%s: its role grants %s on %s (policy %s, %s) but the function never called it", fn, a, r, st.Policy, st.Sid)
					}
				}
			}
		}
	}
}

// lambdaBasicExecution is the managed policy through which Lambda writes a
// function's logs.
const lambdaBasicExecution = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"

// pollerActions are what an SQS event source mapping does with the role.
var pollerActions = []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}

// usedByLambda says why Lambda itself, not the binary, uses action on
// resource with the role, or "" if it does not.
func (r Role) usedByLambda(st Statement, action, resource string) string {
	switch {
	case st.Policy == lambdaBasicExecution:
		return "Lambda writes the function's logs"
	case slices.Contains(r.EventSources, resource) && slices.Contains(pollerActions, action):
		return "the event source mapping polls the queue"
	case resource == r.DeadLetter && action == "sqs:SendMessage":
		return "Lambda sends failed asynchronous events to the dead-letter queue"
	}
	return ""
}
