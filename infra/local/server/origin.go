package server

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/wsnotify/wsnotify/shared/handler"
	"github.com/wsnotify/wsnotify/shared/notify"
)

// The Origin allow-list (Config.OriginPatterns) is for browsers: a page of
// another site cannot open a WebSocket from a user's browser, even with a key
// it got hold of. It is checked before $connect, so a refused origin costs
// no key lookup, uses no connect-rate token and leaves nothing in the store.
//
// A handshake without an Origin header is let through. Browsers always send
// one on a WebSocket handshake, so its absence means a non-browser client
// (Node ws, Go, curl), which could send any Origin it likes: refusing it
// would stop no attacker and break the seed's Node example. Such clients are
// held back by their API key, not by the allow-list.
//
// The patterns match as coder/websocket's AcceptOptions.OriginPatterns do:
// path.Match, case-insensitive, against the origin's host (with port), or
// against scheme://host when the pattern has a scheme. The request's own
// Host is not allowed implicitly: a DNS-rebinding page would carry it.

// checkOriginPatterns refuses a malformed pattern at start-up rather than at
// the first handshake.
func checkOriginPatterns(patterns []string) error {
	for _, p := range patterns {
		if strings.TrimSpace(p) == "" {
			return fmt.Errorf("origin pattern %q is empty", p)
		}
		if _, err := path.Match(strings.ToLower(p), ""); err != nil {
			return fmt.Errorf("origin pattern %q: %w", p, err)
		}
	}
	return nil
}

// originAllowed reports whether r's Origin may connect under patterns.
func originAllowed(r *http.Request, patterns []string) bool {
	if len(patterns) == 0 {
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		// "null" (a sandboxed page, a file:// page) or garbage: no host to allow.
		return false
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return true
		}
	}
	return false
}

// logOrigin is the Origin header as a log attribute: scheme and host only,
// bounded, since the header is whatever the client chose to send.
func logOrigin(r *http.Request) string {
	origin := r.Header.Get("Origin")
	if u, err := url.Parse(origin); err == nil && u.Host != "" {
		origin = u.Scheme + "://" + u.Host
	}
	return clip(origin)
}

// refuseOrigin answers a handshake from an origin off the allow-list: 403
// with an error event, the shape of every refused handshake.
func refuseOrigin(w http.ResponseWriter) {
	body := handler.ErrorJSON(notify.Errorf(notify.CodeForbidden, "this page's origin is not allowed to connect"))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte(body))
}
