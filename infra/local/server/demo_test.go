package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	jsclient "github.com/wsnotify/wsnotify/clients/js"
	"github.com/wsnotify/wsnotify/infra/local/server"
)

func TestLocalModeServesTheClientModuleAsJavaScript(t *testing.T) {
	t.Parallel()
	h := start(t, server.Config{APIKeys: map[string]string{"k": "o"}})
	resp, body := get(t, h.base+"/wsnotify.js", "http://app.localhost:3000")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, jsclient.Module) {
		t.Fatalf("GET /wsnotify.js: %d, %d bytes", resp.StatusCode, len(body))
	}
	for name, want := range map[string]string{
		"Content-Type":                "text/javascript; charset=utf-8",
		"Access-Control-Allow-Origin": "*", // module scripts are fetched with CORS
		"X-Content-Type-Options":      "nosniff",
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}

func TestLocalModeServesTheDemoPageWithAPolicyThatAllowsOnlyItsOwnCode(t *testing.T) {
	t.Parallel()
	h := start(t, server.Config{APIKeys: map[string]string{"k": "o"}})
	resp, body := get(t, h.base+"/?token=k", "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.Contains(body, []byte(`import { connect } from '/wsnotify.js';`)) {
		t.Fatal("the page does not use the client module")
	}
	if got := resp.Header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy %q: the token in the page's URL must not leak", got)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, block := range []struct{ directive, pattern string }{
		{"script-src", `(?s)<script type="module">(.*?)</script>`},
		{"style-src", `(?s)<style>(.*?)</style>`},
	} {
		m := regexp.MustCompile(block.pattern).FindSubmatch(body)
		if m == nil {
			t.Fatalf("no %s block in the page", block.directive)
		}
		sum := sha256.Sum256(m[1])
		hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if !strings.Contains(csp, block.directive+" ") || !strings.Contains(csp, hash) {
			t.Errorf("Content-Security-Policy %q lacks %s %s", csp, block.directive, hash)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy too loose: %q", csp)
	}
	if bytes.Contains(body, []byte("innerHTML")) {
		t.Error("the page writes HTML from events; it must write text only")
	}
}

func TestOtherPathsAndMethodsOnThePageAreRefused(t *testing.T) {
	t.Parallel()
	h := start(t, server.Config{APIKeys: map[string]string{"k": "o"}})
	for path, want := range map[string]int{"/index.html": http.StatusNotFound, "/demo/index.html": http.StatusNotFound, "/wsnotify.d.ts": http.StatusNotFound} {
		if resp, _ := get(t, h.base+path, ""); resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	resp, err := http.Post(h.base+"/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", resp.StatusCode)
	}
}

func get(t *testing.T, url, origin string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}
