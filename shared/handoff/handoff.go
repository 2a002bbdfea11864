// Package handoff carries a publish's send half from a publishing function
// to the fan-out function: a synchronous Lambda Invoke (RequestResponse)
// whose payload is a notify.Fanout and whose answer is the notify.Result
// of its pushes. The fan-out function's handler is Notifier.FanOut itself.
//
// Why: Lambda gives CPU in proportion to memory. A publishing function
// small enough to publish to a few connections cheaply takes seconds to post
// to thousands; it hands those to a function sized for them, and waits.
package handoff

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/wsnotify/wsnotify/shared/notify"
)

// Invoker is the API Invoker needs of the Lambda client.
type Invoker interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, optFns ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// Client is a notify.Handoff over Lambda's Invoke API.
type Client struct {
	lambda   Invoker
	function string
}

var _ notify.Handoff = (*Client)(nil)

// New returns a Client invoking function (a name or ARN) through c.
func New(c Invoker, function string) *Client {
	return &Client{lambda: c, function: function}
}

// ErrFunction is the error of an invoke the fan-out function answered with
// an error of its own (the FunctionError of the answer: it returned an
// error, panicked, or timed out).
var ErrFunction = errors.New("fan-out function failed")

// FanOut implements notify.Handoff: f invoked on the fan-out function, its
// answer decoded. The invoke waits for the fan-out; the caller's context
// (its Lambda deadline) bounds it.
func (c *Client) FanOut(ctx context.Context, f notify.Fanout) (notify.Result, error) {
	payload, err := json.Marshal(f)
	if err != nil {
		return notify.Result{}, fmt.Errorf("hand-off of %s: %w", f.ID, err)
	}
	out, err := c.lambda.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(c.function),
		InvocationType: types.InvocationTypeRequestResponse,
		Payload:        payload,
	})
	if err != nil {
		return notify.Result{}, fmt.Errorf("hand-off of %s to %s: %w", f.ID, c.function, err)
	}
	if out.FunctionError != nil {
		return notify.Result{}, fmt.Errorf("hand-off of %s to %s: %w (%s): %s", f.ID, c.function, ErrFunction, *out.FunctionError, errorMessage(out.Payload))
	}
	var res notify.Result
	if err := json.Unmarshal(out.Payload, &res); err != nil {
		return notify.Result{}, fmt.Errorf("hand-off of %s to %s: answer: %w", f.ID, c.function, err)
	}
	if res.ID != f.ID {
		return notify.Result{}, fmt.Errorf("hand-off of %s to %s: answered for %q", f.ID, c.function, res.ID)
	}
	return res, nil
}

// errorMessage is the errorMessage of a function error's payload (the
// runtime's {"errorMessage", "errorType"}), at most 200 bytes of it.
func errorMessage(payload []byte) string {
	var e struct {
		Message string `json:"errorMessage"`
	}
	_ = json.Unmarshal(payload, &e)
	if len(e.Message) > 200 {
		return e.Message[:200] + "…"
	}
	return e.Message
}
