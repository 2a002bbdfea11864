package server

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	jsclient "github.com/wsnotify/wsnotify/clients/js"
)

// demoPage is the live demo page served at /: plain HTML with its style
// and script inline, no build step. Its script imports /wsnotify.js.
//
//go:embed demo/index.html
var demoPage []byte

// demoPolicy is the page's Content-Security-Policy: its own inline style and
// script (by hash), the client module from this origin, WebSockets, and
// nothing else. The page shows names that come from uploads; it writes them
// as text, and the policy makes sure no other script could run.
var demoPolicy = contentSecurityPolicy(demoPage)

// contentSecurityPolicy allows exactly the inline <style> and <script> blocks
// of page, by their SHA-256.
func contentSecurityPolicy(page []byte) string {
	hashes := func(re *regexp.Regexp) string {
		var out []string
		for _, m := range re.FindAllSubmatch(page, -1) {
			sum := sha256.Sum256(m[1])
			out = append(out, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
		}
		return strings.Join(out, " ")
	}
	return fmt.Sprintf("default-src 'none'; script-src 'self' %s; style-src %s; connect-src 'self' ws: wss:; "+
		"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		hashes(regexp.MustCompile(`(?s)<script type="module">(.*?)</script>`)),
		hashes(regexp.MustCompile(`(?s)<style>(.*?)</style>`)))
}

// serveDemoPage serves the demo page. The token may be in the page's URL
// (?token=), so the page sends no Referer anywhere, and the request log
// drops query strings.
func serveDemoPage(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", demoPolicy)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(demoPage)
}

// serveClientModule serves the JavaScript client module. Any origin may
// import it (a module script is fetched with CORS), so an application under
// development on another port can use local mode's copy.
func serveClientModule(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(jsclient.Module)
}
