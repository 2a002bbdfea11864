package server

import (
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// The control plane is what only AWS itself, or the account's own code, can
// call in the cloud: the Lambda Invoke API (the triggers' way in) and the
// Management API (the functions' way out). Local mode serves both on the same
// port as the WebSocket endpoint, so it guards them against the two callers
// that could reach a developer's machine but have no business there:
//
//   - A web page on any site. A browser sends a cross-site POST with a
//     text/plain body without a preflight (mode "no-cors"), and with DNS
//     rebinding it can even read the answer. Browsers always send an Origin
//     header on such requests; curl, the AWS SDKs and the Lambda tooling
//     never do. So a request with an Origin header is refused, and so is one
//     whose Host is a name other than a loopback name or the address local
//     mode listens on: a rebinding page reaches us under its own name.
//   - Another machine, when --addr is not a loopback address. local mode then
//     refuses to start without a control token, and every control-plane
//     request must carry it as "Authorization: Bearer <token>".
//
// A refused request gets 403 in the error shape of the API it aimed at, with
// a one-line reason.

// MinControlTokenLength is the shortest control token accepted: long enough
// that it cannot be guessed over the network.
const MinControlTokenLength = 16

// controlRefusal says why a control-plane request is refused, or "".
func (s *Server) controlRefusal(r *http.Request) string {
	if r.Header.Get("Origin") != "" {
		return "the control plane refuses requests from web pages (an Origin header is present)"
	}
	if !s.controlHostAllowed(r.Host) {
		return fmt.Sprintf("the control plane answers only to a loopback host name or the address it listens on, not %q", clip(r.Host))
	}
	if s.cfg.ControlToken != "" {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.ControlToken)) != 1 {
			return "the control plane needs the control token: Authorization: Bearer <token>"
		}
	}
	return ""
}

// controlHostAllowed reports whether a control-plane request may name host.
// DNS rebinding needs a DNS name of the attacker's, so IP literals are safe
// whenever the listener takes them: loopback addresses always, any address
// when local mode listens on all of them.
func (s *Server) controlHostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true // RFC 6761: always the loopback interface
	}
	ip := net.ParseIP(host)
	if ip != nil && ip.IsLoopback() {
		return true
	}
	listen := s.listenIP()
	switch {
	case listen == nil:
		return false
	case listen.IsUnspecified():
		return ip != nil
	default:
		return ip != nil && ip.Equal(listen)
	}
}

// listenIP is the address Serve listens on, nil before Serve.
func (s *Server) listenIP() net.IP {
	addr, _ := s.listenAddr.Load().(net.Addr)
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.IP
	}
	return nil
}

// controlPlane guards next (see the top of this file); refuse answers a
// refused request in the error shape of next's API.
func (s *Server) controlPlane(next http.HandlerFunc, refuse func(w http.ResponseWriter, reason string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if reason := s.controlRefusal(r); reason != "" {
			s.log.Warn("control plane request refused", "method", r.Method, "path", clip(r.URL.Path), "reason", reason)
			refuse(w, reason)
			return
		}
		next(w, r)
	}
}

// IsLoopbackAddr reports whether addr (host:port, as --addr takes it) listens
// on loopback only. An empty host or a name other than localhost listens on
// more than loopback, or may.
func IsLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckControlToken refuses a control token too short to be a secret.
func CheckControlToken(token string) error {
	if len(token) < MinControlTokenLength {
		return fmt.Errorf("the control token must be at least %d characters", MinControlTokenLength)
	}
	return nil
}
