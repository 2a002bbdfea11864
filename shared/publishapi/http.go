package publishapi

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"

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

// HandleLambda is PublishFunction: a request for either route, from API
// Gateway's HTTP API or from the function's URL. Both send payload format
// 2.0; the HTTP API names the route it matched in routeKey, a function URL
// sends every request as "$default", so its route is read from the method
// and the raw path.
func (a *API) HandleLambda(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var resp Response
	route, owner := req.RouteKey, req.PathParameters["ownerId"]
	if route != RoutePublish && route != RouteConnections {
		route, owner = matchPath(req.RequestContext.HTTP.Method, req.RawPath)
	}
	switch route {
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
		resp = a.Connections(ctx, owner)
	default:
		resp = NotFound(req.RequestContext.HTTP.Method, req.RawPath)
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: resp.Status,
		Headers:    map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"},
		Body:       strings.TrimSpace(string(resp.Body)),
	}, nil
}

// matchPath is the route of a function URL's request, as the HTTP API would
// match it, and the owner its path names (percent-decoded, as the HTTP API
// hands a path parameter); "" for a request neither route takes.
func matchPath(method, rawPath string) (route, owner string) {
	if method == http.MethodPost && rawPath == "/v1/publish" {
		return RoutePublish, ""
	}
	seg, ok := strings.CutPrefix(rawPath, "/v1/owners/")
	if seg, ok2 := strings.CutSuffix(seg, "/connections"); ok && ok2 && method == http.MethodGet && seg != "" && !strings.Contains(seg, "/") {
		if owner, err := url.PathUnescape(seg); err == nil {
			return RouteConnections, owner
		}
	}
	return "", ""
}
