package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/shared/publishapi"
)

// publishStage is the publish API's stage in template.yaml: $default, whose
// URL has no stage in its path.
const publishStage = "$default"

// publishRoute serves one route of the publish API (routeKey, as
// template.yaml names it) by invoking PublishFunction on e, as the cloud's
// HTTP API does: the request goes out as the event of payload format 2.0
// and the function's answer comes back as the HTTP answer. The control
// plane's rules have let the request through already; its control token is
// local mode's credential, not the function's, and stays here.
//
// A function that fails, times out or cannot be reached is answered as the
// HTTP API answers: 500 {"message":"Internal Server Error"} (503 "Service
// Unavailable" for a timeout), the cause in local mode's log.
func (s *Server) publishRoute(e *endpoint, routeKey string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, publishapi.MaxBodyBytes+1))
		if err != nil {
			writeGatewayError(w, http.StatusBadRequest)
			return
		}
		payload, err := json.Marshal(httpAPIEvent(r, routeKey, body))
		if err != nil {
			s.log.Error("publish API: encode the event", "err", err)
			writeGatewayError(w, http.StatusInternalServerError)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.timeouts[PublishFunction])
		defer cancel()
		inv, err := e.invoke(ctx, payload)
		var resp events.APIGatewayV2HTTPResponse
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			s.log.Error("function timed out", "function", PublishFunction, "endpoint", e.url)
			writeGatewayError(w, http.StatusServiceUnavailable)
			return
		case err != nil:
			s.log.Error("function endpoint failed", "function", PublishFunction, "endpoint", e.url, "err", err)
			writeGatewayError(w, http.StatusInternalServerError)
			return
		case inv.status != http.StatusOK:
			s.log.Error("function endpoint failed", "function", PublishFunction, "endpoint", e.url, "status", inv.status, "body", clip(string(inv.body)))
			writeGatewayError(w, http.StatusInternalServerError)
			return
		case inv.functionError != "":
			var fe functionError
			_ = json.Unmarshal(inv.body, &fe)
			s.log.Error("function failed", "function", PublishFunction, "errorType", fe.ErrorType, "err", fe.ErrorMessage)
			writeGatewayError(w, http.StatusInternalServerError)
			return
		}
		if err := json.Unmarshal(inv.body, &resp); err != nil || resp.StatusCode < 100 || resp.StatusCode > 599 {
			s.log.Error("function answered no HTTP response", "function", PublishFunction, "answer", clip(string(inv.body)))
			writeGatewayError(w, http.StatusInternalServerError)
			return
		}
		out := []byte(resp.Body)
		if resp.IsBase64Encoded {
			if out, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
				s.log.Error("function answered a body that is not base64", "function", PublishFunction)
				writeGatewayError(w, http.StatusInternalServerError)
				return
			}
		}
		for k, v := range resp.Headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(out)
	}
}

// httpAPIEvent is the event the HTTP API gives PublishFunction for r
// (payload format 2.0): route key, path, query, headers (lower case,
// repeated ones joined by commas), the path's ownerId, the body (base64 if
// it is not UTF-8) and the request's context. Authorization is left out.
func httpAPIEvent(r *http.Request, routeKey string, body []byte) events.APIGatewayV2HTTPRequest {
	headers := map[string]string{}
	for k, v := range r.Header {
		if k = strings.ToLower(k); k != "authorization" {
			headers[k] = strings.Join(v, ",")
		}
	}
	headers["host"] = r.Host
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: routeKey, RawPath: r.URL.EscapedPath(), RawQueryString: r.URL.RawQuery, Headers: headers,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: routeKey, Stage: publishStage, DomainName: r.Host, RequestID: fmt.Sprintf("local-%d", time.Now().UnixNano()),
			Time: time.Now().UTC().Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: time.Now().UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: r.Method, Path: r.URL.Path, Protocol: r.Proto, SourceIP: sourceIP(r), UserAgent: r.UserAgent(),
			},
		},
	}
	if owner := r.PathValue("ownerId"); owner != "" {
		ev.PathParameters = map[string]string{"ownerId": owner}
	}
	if len(body) > 0 {
		if utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
	}
	return ev
}

// writeGatewayError answers as the HTTP API does when its integration
// fails: the status and a JSON message of its text.
func writeGatewayError(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"message":%q}`, http.StatusText(status))
}

// boundBy bounds each request h serves by function's Timeout (from
// template.yaml, or Config.FunctionTimeouts), as Lambda bounds an
// invocation of the function that serves it in the cloud.
func (s *Server) boundBy(function string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.timeouts[function])
		defer cancel()
		h(w, r.WithContext(ctx))
	}
}
