package handler

import (
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/shared/text"
)

// Origins is the allow-list of browser origins that $connect accepts; the
// zero value allows every origin, as API Gateway does (it does not check
// Origin). The list is for browsers: a page of another site cannot open a
// WebSocket from a user's browser, even with a key it got hold of. Connect
// checks it first, so a refused origin costs no key lookup, uses no
// connect-rate token and leaves nothing in the store.
//
// A handshake without an Origin header is let through. Browsers always send
// one on a WebSocket handshake, so its absence means a non-browser client
// (Node ws, Go, curl), which could send any Origin it likes: refusing it
// would stop no attacker and break the seed's Node example. Such clients are
// held back by their API key, not by the allow-list.
//
// Patterns match as coder/websocket's AcceptOptions.OriginPatterns do:
// path.Match, case-insensitive, against the origin's host (with port), or
// against scheme://host when the pattern has a scheme. The request's own
// host is not allowed implicitly: a DNS-rebinding page would carry it.
type Origins struct {
	patterns []string // lower case
}

// NewOrigins returns the allow-list of patterns, each [scheme://]host[:port]
// with * wildcards ("https://app.example.com", "*.example.com",
// "localhost:*"). No pattern allows every origin. A pattern that is empty,
// has a path or is not a valid path.Match pattern is refused, so a mistake
// shows at start-up rather than as refused browsers.
func NewOrigins(patterns []string) (Origins, error) {
	var o Origins
	for _, raw := range patterns {
		p := strings.ToLower(strings.TrimSpace(raw))
		if p == "" {
			return Origins{}, fmt.Errorf("origin pattern %q is empty", raw)
		}
		host := p
		if scheme, rest, ok := strings.Cut(p, "://"); ok {
			if scheme == "" {
				return Origins{}, fmt.Errorf("origin pattern %q: the scheme is empty", raw)
			}
			host = rest
		}
		if host == "" || strings.Contains(host, "/") {
			return Origins{}, fmt.Errorf("origin pattern %q: want [scheme://]host[:port], with no path", raw)
		}
		if _, err := path.Match(p, ""); err != nil {
			return Origins{}, fmt.Errorf("origin pattern %q: %w", raw, err)
		}
		o.patterns = append(o.patterns, p)
	}
	return o, nil
}

// ParseOrigins reads a comma-separated list of patterns (see NewOrigins), as
// the ALLOWED_ORIGINS variable holds it. An empty list allows every origin;
// an empty entry in a list is refused.
func ParseOrigins(list string) (Origins, error) {
	if strings.TrimSpace(list) == "" {
		return Origins{}, nil
	}
	return NewOrigins(strings.Split(list, ","))
}

// refused returns an Origin header value of req that the list does not
// allow, looking at every Origin header whatever the case of its name: API
// Gateway passes header names as the client sent them, in both Headers and
// MultiValueHeaders.
func (o Origins) refused(req events.APIGatewayWebsocketProxyRequest) (string, bool) {
	if len(o.patterns) == 0 {
		return "", false
	}
	var origins []string
	for name, v := range req.Headers {
		if strings.EqualFold(name, "Origin") {
			origins = append(origins, v)
		}
	}
	for name, vs := range req.MultiValueHeaders {
		if strings.EqualFold(name, "Origin") {
			origins = append(origins, vs...)
		}
	}
	for _, origin := range origins {
		if origin != "" && !o.allows(origin) {
			return origin, true
		}
	}
	return "", false
}

// allows reports whether a page of origin may connect.
func (o Origins) allows(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		// "null" (a sandboxed page, a file:// page) or garbage: no host to allow.
		return false
	}
	for _, p := range o.patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(p, strings.ToLower(target)); ok {
			return true
		}
	}
	return false
}

// originForLog is an Origin header as a log attribute: scheme and host only,
// bounded, since the header is whatever the client chose to send.
func originForLog(origin string) string {
	if u, err := url.Parse(origin); err == nil && u.Host != "" {
		origin = u.Scheme + "://" + u.Host
	}
	return text.Clip(origin, 256)
}
