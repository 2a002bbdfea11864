package openapi

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
)

// Proxy serves a reverse proxy to base (a publish API, as local mode's
// http://127.0.0.1:port) for a test whose client is not ours to wrap (a
// publisher, a Node.js process): every answer passing through is held to
// the document by CheckResponse, and one off it fails t. It returns the
// proxy's URL; the proxy stops when the test ends.
func Proxy(t testing.TB, base string) string {
	t.Helper()
	target, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(resp *http.Response) error {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		req := resp.Request
		if err := CheckResponse(req.Method, req.URL.Path, resp.StatusCode, body); err != nil {
			t.Errorf("%s %s answered %d off docs/openapi.yaml: %v\n%s", req.Method, req.URL.Path, resp.StatusCode, err, body)
		}
		return nil
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return srv.URL
}
