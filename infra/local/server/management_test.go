package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/coder/websocket"
)

// managementClient is the real SDK client, pointed at local mode's stage
// URL as the functions point it at API Gateway's.
func managementClient(h *harness) *apigatewaymanagementapi.Client {
	return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(h.base + "/local"),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDLOCAL", "local-secret", ""),
	})
}

func TestTheManagementAPIServesTheSDKClient(t *testing.T) {
	t.Parallel()
	h := start(t, twoOwners())
	api := managementClient(h)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c := h.connect(t, "managed", keyA)
	id := h.connectionID(t, ownerA, "managed")

	t.Run("PostToConnection delivers the data as one text message", func(t *testing.T) {
		_, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
			ConnectionId: aws.String(id),
			Data:         []byte(`{"type":"job_progress","jobId":"j"}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		if m := readUnchecked(t, c); m["type"] != "job_progress" || m["jobId"] != "j" { // the bytes posted above
			t.Fatalf("got %v", m)
		}
	})
	t.Run("GetConnection reports when and from where it connected", func(t *testing.T) {
		out, err := api.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		if out.ConnectedAt == nil || out.LastActiveAt == nil || out.Identity == nil ||
			aws.ToString(out.Identity.SourceIp) != "127.0.0.1" || aws.ToString(out.Identity.UserAgent) == "" {
			t.Fatalf("GetConnection = %+v identity %+v", out, out.Identity)
		}
		if out.LastActiveAt.Before(*out.ConnectedAt) {
			t.Errorf("lastActiveAt %v before connectedAt %v", out.LastActiveAt, out.ConnectedAt)
		}
	})
	t.Run("GetConnection's JSON has API Gateway's field names and time format", func(t *testing.T) {
		resp, err := http.Get(h.base + "/local/@connections/" + url.PathEscape(id))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct {
			ConnectedAt  string            `json:"connectedAt"`
			LastActiveAt string            `json:"lastActiveAt"`
			Identity     map[string]string `json:"identity"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		iso := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
		if !iso.MatchString(got.ConnectedAt) || !iso.MatchString(got.LastActiveAt) || got.Identity["sourceIp"] == "" {
			t.Fatalf("GetConnection JSON = %+v", got)
		}
	})
	t.Run("an oversized post is refused with PayloadTooLargeException", func(t *testing.T) {
		_, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
			ConnectionId: aws.String(id),
			Data:         []byte(strings.Repeat("x", 128*1024+1)),
		})
		var tooLarge *types.PayloadTooLargeException
		if !errors.As(err, &tooLarge) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("DeleteConnection closes the connection and frees its client id", func(t *testing.T) {
		if _, err := api.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)}); err != nil {
			t.Fatal(err)
		}
		if ce := readClose(t, c); ce.Code != websocket.StatusNormalClosure {
			t.Fatalf("closed with %v", ce)
		}
		eventually(t, "the disconnect", func() bool { return h.srv.Hub().Len() == 0 })
		h.connect(t, "managed", keyA)
	})
	t.Run("every call on an unknown connection fails with GoneException", func(t *testing.T) {
		unknown := aws.String("TWegAcC4EowCHnA=")
		_, errPost := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: unknown, Data: []byte("x")})
		_, errGet := api.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: unknown})
		_, errDelete := api.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: unknown})
		for call, err := range map[string]error{"post": errPost, "get": errGet, "delete": errDelete} {
			var gone *types.GoneException
			if !errors.As(err, &gone) {
				t.Errorf("%s: err = %v, want GoneException", call, err)
			}
		}
	})
}

func TestTheManagementAPIAnswersWithoutAStageAndWithAWSErrorHeaders(t *testing.T) {
	t.Parallel()
	h := start(t, twoOwners())
	c := h.connect(t, "plain", keyA)
	id := h.connectionID(t, ownerA, "plain")

	resp, err := http.Post(h.base+"/@connections/"+url.PathEscape(id), "application/json", strings.NewReader(`{"type":"pong"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST status %d", resp.StatusCode)
	}
	if m := read(t, c); m["type"] != "pong" {
		t.Fatalf("got %v", m)
	}

	resp, err = http.Post(h.base+"/prod/@connections/nope%3D", "application/json", strings.NewReader(`x`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone || resp.Header.Get("x-amzn-ErrorType") != "GoneException" || !json.Valid(body) {
		t.Fatalf("unknown id: %d %q %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), body)
	}
}
