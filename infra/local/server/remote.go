package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/infra/template"
)

// The functions local mode wires by name: their handlers in-process and
// the WebSocket routes. Everything else about a function (which exist, their
// timeouts, which a route invokes) comes from template.yaml (functionTable).
const (
	ConnectFunction    = "ConnectFunction"
	DisconnectFunction = "DisconnectFunction"
	DefaultFunction    = "DefaultFunction"
	JobEventsFunction  = "JobEventsFunction"
	S3UploadFunction   = "S3UploadFunction"
	PublishFunction    = "PublishFunction"
)

// functionTable is template.yaml's functions by logical id, read once.
var functionTable = sync.OnceValues(func() (map[string]template.Function, error) {
	tpl, err := template.Repo()
	if err != nil {
		return nil, err
	}
	fns, err := tpl.Functions()
	if err != nil {
		return nil, fmt.Errorf("template.yaml: %w", err)
	}
	table := make(map[string]template.Function, len(fns))
	for _, f := range fns {
		table[f.LogicalID] = f
	}
	for _, name := range []string{ConnectFunction, DisconnectFunction, DefaultFunction, JobEventsFunction, PublishFunction, S3UploadFunction} {
		if _, ok := table[name]; !ok {
			return nil, fmt.Errorf("template.yaml has no function %s, which local mode serves", name)
		}
	}
	return table, nil
})

// FunctionNames returns the logical ids of the template's functions, sorted.
func FunctionNames() []string {
	table, _ := functionTable()
	names := make([]string, 0, len(table))
	for name := range table {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// CheckFunctionEndpoint reports whether name is a function of the template
// and rawURL an http(s) URL, as Config.FunctionEndpoints needs them.
func CheckFunctionEndpoint(name, rawURL string) error {
	if !isFunctionName(name) {
		return fmt.Errorf("unknown function %q: the functions are %s", name, strings.Join(FunctionNames(), ", "))
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: endpoint %q is not an http(s) URL, such as http://127.0.0.1:9001/2015-03-31/functions/function/invocations", name, rawURL)
	}
	return nil
}

// isRouteFunction reports whether name is the function of a WebSocket
// route, which only API Gateway (here: the WebSocket endpoint) invokes.
func isRouteFunction(name string) bool {
	table, _ := functionTable()
	return table[name].Route != ""
}

func isFunctionName(name string) bool {
	table, _ := functionTable()
	_, ok := table[name]
	return ok
}

// endpoint is a Lambda function's Invoke API served by another process:
// aws-lambda-rie in front of a bootstrap, `sam local start-lambda`, or Lambda.
type endpoint struct {
	url    string
	client *http.Client
	// slot lets one invocation at a time through: aws-lambda-rie serves a
	// single invocation and crashes when a second arrives while one runs
	// (seen with the version the Makefile pins). Concurrent connects, messages and disconnects therefore
	// queue here, as they would for a function with reserved concurrency 1.
	// A channel rather than a mutex, so that a caller whose context ends
	// stops waiting.
	slot chan struct{}
}

// newEndpoints checks Config.FunctionEndpoints and returns an endpoint per
// function. Functions given the same URL share one endpoint, and so one slot.
func newEndpoints(urls map[string]string) (map[string]*endpoint, error) {
	names := make([]string, 0, len(urls))
	for name := range urls {
		names = append(names, name)
	}
	sort.Strings(names)
	byURL := map[string]*endpoint{}
	endpoints := make(map[string]*endpoint, len(urls))
	for _, name := range names {
		u := urls[name]
		if err := CheckFunctionEndpoint(name, u); err != nil {
			return nil, err
		}
		e, ok := byURL[u]
		if !ok {
			e = &endpoint{url: u, client: &http.Client{}, slot: make(chan struct{}, 1)}
			byURL[u] = e
		}
		endpoints[name] = e
	}
	return endpoints, nil
}

// invocation is an endpoint's answer.
type invocation struct {
	status int
	header http.Header
	body   []byte
	// functionError is the X-Amz-Function-Error of a failed function
	// ("Unhandled"), empty on success.
	functionError string
}

// abandonedGrace bounds how long after its caller's deadline an invocation
// the caller gave up on may still hold its endpoint: the endpoint stops the
// function at the same timeout (aws-lambda-rie's AWS_LAMBDA_FUNCTION_TIMEOUT,
// Lambda's Timeout) and answers then.
const abandonedGrace = 10 * time.Second

// invoke sends payload to the endpoint and reads its answer. The error is
// one of transport (or ctx's); a function error is an invocation.
//
// The caller's context ending (the function's timeout) returns at once, but
// the request goes on, and holds the endpoint's slot, until the endpoint
// answers it: the function runs on there until its own timeout, and a second
// invocation sent meanwhile would crash aws-lambda-rie for good.
func (e *endpoint) invoke(ctx context.Context, payload []byte) (invocation, error) {
	select {
	case e.slot <- struct{}{}:
	case <-ctx.Done():
		return invocation{}, fmt.Errorf("wait for the endpoint: %w", ctx.Err())
	}
	type answer struct {
		inv invocation
		err error
	}
	answered := make(chan answer, 1)
	go func() {
		defer func() { <-e.slot }()
		rctx, cancel := context.WithoutCancel(ctx), context.CancelFunc(func() {})
		if deadline, ok := ctx.Deadline(); ok {
			rctx, cancel = context.WithDeadline(rctx, deadline.Add(abandonedGrace))
		}
		defer cancel()
		inv, err := e.send(rctx, payload)
		answered <- answer{inv, err}
	}()
	select {
	case a := <-answered:
		return a.inv, a.err
	case <-ctx.Done():
		return invocation{}, ctx.Err()
	}
}

// send makes the request of invoke.
func (e *endpoint) send(ctx context.Context, payload []byte) (invocation, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(payload))
	if err != nil {
		return invocation{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		return invocation{}, err
	}
	defer resp.Body.Close()
	// Lambda's limit on a synchronous invocation's response is the same 6 MB.
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxInvokePayload+1))
	if err != nil {
		return invocation{}, fmt.Errorf("read the answer: %w", err)
	}
	if len(body) > maxInvokePayload {
		return invocation{}, fmt.Errorf("the answer exceeds %d bytes", maxInvokePayload)
	}
	inv := invocation{status: resp.StatusCode, header: resp.Header, body: body,
		functionError: resp.Header.Get("X-Amz-Function-Error")}
	if inv.functionError == "" && resp.StatusCode == http.StatusOK && isErrorPayload(body) {
		// aws-lambda-rie answers a function error with 200 and the error
		// body but no X-Amz-Function-Error; Lambda and `sam local
		// start-lambda` set it.
		inv.functionError = "Unhandled"
	}
	return inv, nil
}

// isErrorPayload reports whether body is the error document a Lambda
// runtime reports a failed invocation with: errorMessage and errorType,
// perhaps a stackTrace, nothing else. None of our functions' results has
// that shape.
func isErrorPayload(body []byte) bool {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return false
	}
	if _, ok := fields["errorMessage"]; !ok {
		return false
	}
	for name := range fields {
		if name != "errorMessage" && name != "errorType" && name != "stackTrace" {
			return false
		}
	}
	return true
}

// route is the WebSocket route integration that invokes the function name
// on e: the event goes out as the function's payload and its answer is read
// as the proxy response. A failed function or an unreachable endpoint is an
// error, which the route's caller answers as API Gateway answers a failed
// integration. The caller's context bounds the invocation (RouteTimeout).
func (e *endpoint) route(name string) Route {
	return func(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		var resp events.APIGatewayProxyResponse
		payload, err := json.Marshal(req)
		if err != nil {
			return resp, fmt.Errorf("encode the event for %s: %w", name, err)
		}
		inv, err := e.invoke(ctx, payload)
		switch {
		case err != nil:
			return resp, fmt.Errorf("invoke %s at %s: %w", name, e.url, err)
		case inv.status != http.StatusOK:
			return resp, fmt.Errorf("invoke %s at %s: status %d: %s", name, e.url, inv.status, clip(string(inv.body)))
		case inv.functionError != "":
			var fe functionError
			_ = json.Unmarshal(inv.body, &fe)
			return resp, fmt.Errorf("%s failed: %s: %s", name, fe.ErrorType, fe.ErrorMessage)
		}
		if err := json.Unmarshal(inv.body, &resp); err != nil {
			return resp, fmt.Errorf("%s answered %s: %w", name, clip(string(inv.body)), err)
		}
		return resp, nil
	}
}

// forward serves an Invoke API call of a function that runs on an
// endpoint: the payload goes there, and its status, body and function
// error come back to the caller, who thus reaches the function's binary.
// Asynchronous calls wait for the function too and then answer 202, as the
// in-process functions do.
func (s *Server) forward(ctx context.Context, w http.ResponseWriter, name string, e *endpoint, payload []byte, invocationType string) {
	inv, err := e.invoke(ctx, payload)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		s.log.Error("function timed out", "function", name, "endpoint", e.url)
		writeTimedOut(w, s.timeouts[name])
		return
	}
	if err != nil {
		s.log.Error("function endpoint failed", "function", name, "endpoint", e.url, "err", err)
		writeJSON(w, http.StatusBadGateway, map[string]string{"x-amzn-ErrorType": "ServiceException"},
			lambdaServiceError{Type: "Service", Message: fmt.Sprintf("the endpoint of %s did not answer: %v", name, err)})
		return
	}
	if inv.functionError != "" {
		var fe functionError
		_ = json.Unmarshal(inv.body, &fe)
		s.log.Error("function failed", "function", name, "errorType", fe.ErrorType, "err", fe.ErrorMessage)
		w.Header().Set("X-Amz-Function-Error", inv.functionError)
	} else if invocationType == "Event" && inv.status == http.StatusOK {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	for _, h := range []string{"X-Amz-Executed-Version", "X-Amz-Log-Result", "x-amzn-ErrorType", "x-amzn-RequestId"} {
		if v := inv.header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	if w.Header().Get("X-Amz-Executed-Version") == "" && inv.status == http.StatusOK {
		w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	}
	// A function's payload is JSON, whatever type the emulator labels it
	// with; anything else (an emulator's own error page) keeps its type.
	if json.Valid(inv.body) {
		w.Header().Set("Content-Type", "application/json")
	} else if ct := inv.header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(inv.status)
	_, _ = w.Write(inv.body)
}
