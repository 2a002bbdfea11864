package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"
)

// maxInvokePayload is Lambda's limit on a synchronous invocation's request.
const maxInvokePayload = 6 << 20

// function is one Lambda function behind the Invoke API: a JSON payload in,
// a JSON payload out. An error is the function's error, which Lambda reports
// with status 200 and X-Amz-Function-Error.
type function func(ctx context.Context, payload []byte) ([]byte, error)

// lambdaFunction adapts a typed handler as the Lambda Go runtime does: the
// payload is decoded into the handler's event type (a mismatch is a function
// error, as in Lambda) and its result encoded as JSON.
func lambdaFunction[In, Out any](h func(context.Context, In) (Out, error)) function {
	return func(ctx context.Context, payload []byte) ([]byte, error) {
		var in In
		if err := json.Unmarshal(payload, &in); err != nil {
			return nil, err
		}
		out, err := h(ctx, in)
		if err != nil {
			return nil, err
		}
		return json.Marshal(out)
	}
}

// lambdaServiceError is the body of an error of the Lambda service itself
// (as opposed to an error of the function).
type lambdaServiceError struct {
	Type    string `json:"Type"`
	Message string `json:"Message"`
}

// functionError is the body Lambda answers when the function fails.
type functionError struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

// invoke serves the Lambda Invoke API,
// POST /2015-03-31/functions/{function}/invocations, as `sam local
// start-lambda` does: the function names are template.yaml's logical ids.
//
// The route functions ($connect, $disconnect, $default) are not served: in
// the cloud only API Gateway may invoke them, and anyone who could would
// register a stranger's connection under their own owner. Local mode runs
// them from its WebSocket endpoint alone and answers an Invoke API call for
// them as Lambda answers a caller without lambda:InvokeFunction.
func (s *Server) invoke(w http.ResponseWriter, r *http.Request) {
	name := functionName(r.PathValue("function"))
	fn, ok := s.functions[name]
	if !ok && isRouteFunction(name) {
		s.log.Warn("invoke refused: a route function", "function", name)
		refuseInvoke(w, "User is not authorized to perform: lambda:InvokeFunction on resource: "+
			functionARN(name)+": only the WebSocket API invokes the route functions")
		return
	}
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"x-amzn-ErrorType": "ResourceNotFoundException"},
			lambdaServiceError{Type: "User", Message: "Function not found: " + functionARN(clip(name))})
		return
	}
	payload, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInvokePayload))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"x-amzn-ErrorType": "RequestTooLargeException"},
			lambdaServiceError{Type: "User", Message: "Request must be smaller than 6291456 bytes for the InvokeFunction operation"})
		return
	case err != nil:
		writeJSON(w, http.StatusBadRequest, map[string]string{"x-amzn-ErrorType": "InvalidRequestContentException"},
			lambdaServiceError{Type: "User", Message: "Could not read request body"})
		return
	}
	if len(bytes.TrimSpace(payload)) == 0 {
		payload = []byte("{}") // an invocation without a payload gets an empty event
	}
	if !json.Valid(payload) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"x-amzn-ErrorType": "InvalidRequestContentException"},
			lambdaServiceError{Type: "User", Message: "Could not parse request body into json"})
		return
	}

	invocationType := r.Header.Get("X-Amz-Invocation-Type")
	if invocationType == "DryRun" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	// The function runs for its Timeout, as in Lambda, and the answer must
	// still be written after that, whatever the server's write timeout.
	timeout := s.timeouts[name]
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeout + writeTimeout))
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	if e, ok := s.endpoints[name]; ok {
		s.forward(ctx, w, name, e, payload, invocationType)
		return
	}
	out, err := s.run(ctx, fn, payload)
	headers := map[string]string{"X-Amz-Executed-Version": "$LATEST"}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		s.log.Error("function timed out", "function", name, "timeout", timeout)
		writeTimedOut(w, timeout)
		return
	case err != nil:
		s.log.Error("function failed", "function", name, "err", err)
		headers["X-Amz-Function-Error"] = "Unhandled"
		writeJSON(w, http.StatusOK, headers, functionError{ErrorMessage: err.Error(), ErrorType: errorType(err)})
		return
	}
	if invocationType == "Event" {
		// Lambda queues an asynchronous invocation and answers at once; here
		// it has already run, which only makes the caller wait longer.
		w.WriteHeader(http.StatusAccepted)
		return
	}
	for k, v := range headers {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// run calls fn and returns its result, or returns when ctx ends if fn has
// not by then: Lambda answers at the function's deadline whatever the
// function does, and so does local mode. fn goes on in the background until
// it returns (its context has ended); Shutdown waits for it.
func (s *Server) run(ctx context.Context, fn function, payload []byte) ([]byte, error) {
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		out, err := fn(ctx, payload)
		done <- result{out, err}
	}()
	select {
	case res := <-done:
		return res.out, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// writeTimedOut answers an invocation that ran past its function's Timeout
// as Lambda does.
func writeTimedOut(w http.ResponseWriter, timeout time.Duration) {
	writeJSON(w, http.StatusOK, map[string]string{"X-Amz-Function-Error": "Unhandled", "X-Amz-Executed-Version": "$LATEST"},
		functionError{ErrorType: "Sandbox.Timedout", ErrorMessage: fmt.Sprintf("Task timed out after %.2f seconds", timeout.Seconds())})
}

// functionARN is the ARN local mode names a function by in error messages.
func functionARN(name string) string {
	return "arn:aws:lambda:local:000000000000:function:" + name
}

// functionName accepts what Lambda accepts as FunctionName: a name, a name
// with a qualifier, or a full or partial function ARN.
func functionName(s string) string {
	if _, after, ok := strings.Cut(s, "function:"); ok {
		s = after
	}
	name, _, _ := strings.Cut(s, ":")
	return name
}

// errorType names err's type the way the Lambda Go runtime reports it.
func errorType(err error) string {
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}
