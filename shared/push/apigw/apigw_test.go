package apigw_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"

	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/push/apigw"
)

// fakeAPI is a function fake of the Management API client.
type fakeAPI struct {
	post func(in *apigatewaymanagementapi.PostToConnectionInput) error
	get  func(in *apigatewaymanagementapi.GetConnectionInput) error
	del  func(in *apigatewaymanagementapi.DeleteConnectionInput) error
}

func (f fakeAPI) DeleteConnection(_ context.Context, in *apigatewaymanagementapi.DeleteConnectionInput, _ ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.DeleteConnectionOutput, error) {
	return &apigatewaymanagementapi.DeleteConnectionOutput{}, f.del(in)
}

func (f fakeAPI) PostToConnection(_ context.Context, in *apigatewaymanagementapi.PostToConnectionInput, _ ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.PostToConnectionOutput, error) {
	return &apigatewaymanagementapi.PostToConnectionOutput{}, f.post(in)
}

func (f fakeAPI) GetConnection(_ context.Context, in *apigatewaymanagementapi.GetConnectionInput, _ ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.GetConnectionOutput, error) {
	return &apigatewaymanagementapi.GetConnectionOutput{}, f.get(in)
}

// testLogger returns a JSON logger writing into the returned buffer.
func testLogger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewJSONHandler(&buf, nil)), &buf
}

const connID = "TWegAcC4EowCHnA="

var errNetwork = errors.New("dial tcp: connection refused")

// sdkErrors are the Management API's modeled errors and two others, with
// the sentinel each must map to (nil: none).
var sdkErrors = []struct {
	name     string
	err      error
	sentinel error
}{
	{"410 GoneException", &types.GoneException{}, notify.ErrGone},
	{"413 PayloadTooLargeException", &types.PayloadTooLargeException{Message: aws.String("Message too long")}, notify.ErrPayloadTooLarge},
	{"429 LimitExceededException", &types.LimitExceededException{}, nil},
	{"403 ForbiddenException", &types.ForbiddenException{}, nil},
	{"a network failure", errNetwork, nil},
	{"a cancelled context", context.Canceled, nil},
}

func TestPost(t *testing.T) {
	t.Run("sends the data to the connection", func(t *testing.T) {
		var got *apigatewaymanagementapi.PostToConnectionInput
		log, _ := testLogger()
		p := apigw.New(fakeAPI{post: func(in *apigatewaymanagementapi.PostToConnectionInput) error {
			got = in
			return nil
		}}, log)
		if err := p.Post(context.Background(), connID, []byte(`{"type":"pong"}`)); err != nil {
			t.Fatalf("Post: %v", err)
		}
		if aws.ToString(got.ConnectionId) != connID || string(got.Data) != `{"type":"pong"}` {
			t.Errorf("PostToConnection got id %q data %q", aws.ToString(got.ConnectionId), got.Data)
		}
	})

	for _, tc := range sdkErrors {
		t.Run("maps "+tc.name, func(t *testing.T) {
			log, _ := testLogger()
			p := apigw.New(fakeAPI{post: func(*apigatewaymanagementapi.PostToConnectionInput) error { return tc.err }}, log)
			err := p.Post(context.Background(), connID, []byte("x"))
			if err == nil {
				t.Fatal("Post succeeded")
			}
			for _, s := range []error{notify.ErrGone, notify.ErrPayloadTooLarge} {
				if want := s == tc.sentinel; errors.Is(err, s) != want {
					t.Errorf("errors.Is(%v, %v) = %v, want %v", err, s, !want, want)
				}
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("error %v lost the SDK error %v", err, tc.err)
			}
			if !strings.Contains(err.Error(), connID) {
				t.Errorf("error %q does not name the connection", err)
			}
		})
	}

	t.Run("sends a message of exactly the size limit", func(t *testing.T) {
		sent := false
		log, _ := testLogger()
		p := apigw.New(fakeAPI{post: func(*apigatewaymanagementapi.PostToConnectionInput) error {
			sent = true
			return nil
		}}, log)
		if err := p.Post(context.Background(), connID, make([]byte, notify.MaxMessageBytes)); err != nil || !sent {
			t.Fatalf("Post of %d bytes: sent %v, err %v", notify.MaxMessageBytes, sent, err)
		}
	})

	t.Run("refuses a message over the size limit without a request and logs it", func(t *testing.T) {
		log, buf := testLogger()
		p := apigw.New(fakeAPI{post: func(*apigatewaymanagementapi.PostToConnectionInput) error {
			t.Error("PostToConnection called for an oversized message")
			return nil
		}}, log)
		size := notify.MaxMessageBytes + 1
		err := p.Post(context.Background(), connID, make([]byte, size))
		if !errors.Is(err, notify.ErrPayloadTooLarge) {
			t.Fatalf("Post error = %v, want ErrPayloadTooLarge", err)
		}
		var rec map[string]any
		if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
			t.Fatalf("log %q: %v", buf, err)
		}
		if rec["connectionId"] != connID || rec["bytes"] != float64(size) || rec["level"] != "ERROR" {
			t.Errorf("log record %v: want level ERROR, connectionId %s, bytes %d", rec, connID, size)
		}
	})
}

func TestAlive(t *testing.T) {
	t.Run("reports a connection GetConnection finds as alive", func(t *testing.T) {
		var asked string
		log, _ := testLogger()
		p := apigw.New(fakeAPI{get: func(in *apigatewaymanagementapi.GetConnectionInput) error {
			asked = aws.ToString(in.ConnectionId)
			return nil
		}}, log)
		alive, err := p.Alive(context.Background(), connID)
		if err != nil || !alive || asked != connID {
			t.Fatalf("Alive = %v, %v (asked %q), want true, nil (asked %q)", alive, err, asked, connID)
		}
	})

	for _, tc := range sdkErrors {
		t.Run("answers "+tc.name, func(t *testing.T) {
			log, _ := testLogger()
			p := apigw.New(fakeAPI{get: func(*apigatewaymanagementapi.GetConnectionInput) error { return tc.err }}, log)
			alive, err := p.Alive(context.Background(), connID)
			if alive {
				t.Error("Alive = true")
			}
			// Only a 410 is an answer; anything else leaves the question open.
			if gone := tc.sentinel == notify.ErrGone; (err == nil) != gone {
				t.Errorf("Alive error = %v, want an error: %v", err, !gone)
			}
		})
	}
}

func TestCloseConnectionDeletesItAndTakesGoneAsDone(t *testing.T) {
	var deleted []string
	for _, tt := range []struct {
		name    string
		err     error
		wantErr bool
	}{{"deleted", nil, false}, {"already gone", &types.GoneException{}, false}, {"refused", errNetwork, true}} {
		log, _ := testLogger()
		p := apigw.New(fakeAPI{del: func(in *apigatewaymanagementapi.DeleteConnectionInput) error {
			deleted = append(deleted, *in.ConnectionId)
			return tt.err
		}}, log)
		if err := p.CloseConnection(context.Background(), connID); (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, errNetwork)) {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
	if len(deleted) != 3 || deleted[0] != connID {
		t.Fatalf("deleted %v", deleted)
	}
}
