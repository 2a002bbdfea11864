package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
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
func (s *Server) invoke(w http.ResponseWriter, r *http.Request) {
	name := functionName(r.PathValue("function"))
	fn, ok := s.functions[name]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"x-amzn-ErrorType": "ResourceNotFoundException"},
			lambdaServiceError{Type: "User", Message: "Function not found: arn:aws:lambda:local:000000000000:function:" + name})
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
	if e, ok := s.endpoints[name]; ok {
		s.forward(w, r, name, e, payload, invocationType)
		return
	}
	out, err := fn(r.Context(), payload)
	headers := map[string]string{"X-Amz-Executed-Version": "$LATEST"}
	if err != nil {
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
