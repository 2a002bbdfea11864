package publishapi

import (
	"context"
	"io"
	"net/http"
	"strings"

	"encoding/base64"
	"github.com/aws/aws-lambda-go/events"
)

// ServePublish serves POST /v1/publish over net/http (local mode).
func (a *API) ServePublish(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		Write(w, refuse(http.StatusBadRequest, CodeInvalidJSON, "reading the body failed: %v", err))
		return
	}
	Write(w, a.Publish(r.Context(), body))
}

// ServeConnections serves GET /v1/owners/{ownerId}/connections over
// net/http; the route names the path value ownerId.
func (a *API) ServeConnections(w http.ResponseWriter, r *http.Request) {
	Write(w, a.Connections(r.Context(), r.PathValue("ownerId")))
}

// Write sends resp as a JSON answer.
func Write(w http.ResponseWriter, resp Response) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}

// The routes of the HTTP API in template.yaml, as API Gateway names them in
// an event's routeKey.
const (
	RoutePublish     = "POST /v1/publish"
	RouteConnections = "GET /v1/owners/{ownerId}/connections"
)

// HandleLambda is PublishFunction: an API Gateway HTTP API (payload format
// 2.0) request for either route.
func (a *API) HandleLambda(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var resp Response
	switch req.RouteKey {
	case RoutePublish:
		body := []byte(req.Body)
		if req.IsBase64Encoded {
			decoded, err := base64.StdEncoding.DecodeString(req.Body)
			if err != nil {
				resp = refuse(http.StatusBadRequest, CodeInvalidJSON, "the body is not valid base64")
				break
			}
			body = decoded
		}
		resp = a.Publish(ctx, body)
	case RouteConnections:
		resp = a.Connections(ctx, req.PathParameters["ownerId"])
	default:
		resp = NotFound(req.RequestContext.HTTP.Method, req.RawPath)
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: resp.Status,
		Headers:    map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"},
		Body:       strings.TrimSpace(string(resp.Body)),
	}, nil
}
