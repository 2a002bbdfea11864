package handoff_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/wsnotify/wsnotify/shared/handoff"
	"github.com/wsnotify/wsnotify/shared/notify"
)

// fakeLambda answers each Invoke with answer(payload).
type fakeLambda struct {
	in     *lambda.InvokeInput
	answer func(payload []byte) (*lambda.InvokeOutput, error)
}

func (f *fakeLambda) Invoke(_ context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	f.in = in
	return f.answer(in.Payload)
}

func TestFanOutInvokesTheFunctionSynchronouslyAndReadsItsAnswer(t *testing.T) {
	frame := []byte(`{"type":"job_progress","jobId":"j","progress":1,"processedCount":1,"totalCount":2,"currentFile":"<a>&b","id":"e1","seq":7}`)
	f := &fakeLambda{answer: func(p []byte) (*lambda.InvokeOutput, error) {
		var got notify.Fanout
		if err := json.Unmarshal(p, &got); err != nil || string(got.Frame) != string(frame) || got.OwnerID != "o" || got.Seq != 7 {
			t.Errorf("payload %s decodes to %+v, %v", p, got, err)
		}
		return &lambda.InvokeOutput{StatusCode: 200, Payload: []byte(`{"id":"e1","seq":7,"delivered":3,"gone":1,"connecting":0,"failed":2}`)}, nil
	}}
	res, err := handoff.New(f, "wsnotify-FanoutFunction").FanOut(context.Background(),
		notify.Fanout{OwnerID: "o", Type: "job_progress", ID: "e1", Seq: 7, Frame: frame})
	if err != nil || res != (notify.Result{ID: "e1", Seq: 7, Delivered: 3, Gone: 1, Failed: 2}) {
		t.Fatalf("FanOut = %+v, %v", res, err)
	}
	if aws.ToString(f.in.FunctionName) != "wsnotify-FanoutFunction" || f.in.InvocationType != types.InvocationTypeRequestResponse {
		t.Fatalf("invoked %s %s, want wsnotify-FanoutFunction RequestResponse", aws.ToString(f.in.FunctionName), f.in.InvocationType)
	}
}

func TestFanOutFailsOnAFunctionErrorOrAnAnswerForAnotherEvent(t *testing.T) {
	for name, answer := range map[string]func([]byte) (*lambda.InvokeOutput, error){
		"function error": func([]byte) (*lambda.InvokeOutput, error) {
			return &lambda.InvokeOutput{StatusCode: 200, FunctionError: aws.String("Unhandled"),
				Payload: []byte(`{"errorMessage":"query connections of o: timeout","errorType":"wrapError"}`)}, nil
		},
		"another event's answer": func([]byte) (*lambda.InvokeOutput, error) {
			return &lambda.InvokeOutput{StatusCode: 200, Payload: []byte(`{"id":"e2","delivered":3}`)}, nil
		},
		"not a result": func([]byte) (*lambda.InvokeOutput, error) {
			return &lambda.InvokeOutput{StatusCode: 200, Payload: []byte(`null"`)}, nil
		},
		"transport": func([]byte) (*lambda.InvokeOutput, error) { return nil, errors.New("connection refused") },
	} {
		t.Run(name, func(t *testing.T) {
			_, err := handoff.New(&fakeLambda{answer: answer}, "f").FanOut(context.Background(), notify.Fanout{OwnerID: "o", ID: "e1", Frame: []byte("{}")})
			if err == nil {
				t.Fatal("no error")
			}
			if name == "function error" && !errors.Is(err, handoff.ErrFunction) {
				t.Fatalf("%v, want ErrFunction", err)
			}
		})
	}
}
