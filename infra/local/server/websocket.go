package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/shared/push/hub"
)

// apiID stands in for the API Gateway API id in events.
const apiID = "local"

// webSocket serves the WebSocket endpoint. pathClientID is true on the
// seed's path /api/v1/ws/{client_id}: the $connect event then carries the
// client_id path parameter. The raw API Gateway URL has none, and its
// client_id travels in the query string.
func (s *Server) webSocket(pathClientID bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { s.serveWebSocket(w, r, pathClientID) }
}

// wsConn is one WebSocket connection as the emulator sees it: the hub's
// connection, and what API Gateway's events say of it besides.
type wsConn struct {
	*hub.Conn
	domain string // the Host the client connected to, without port
}

// serveWebSocket runs one WebSocket connection through its life as API
// Gateway would: $connect before the handshake, $default for every client
// message, $disconnect after the close. The hub carries the connection
// itself: its queue, writer, limits and close codes.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request, pathClientID bool) {
	if !isUpgrade(r) {
		// API Gateway refuses a request that is no WebSocket handshake before
		// any route runs.
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		writeJSON(w, http.StatusUpgradeRequired, nil, map[string]string{"message": "WebSocket handshake required"})
		return
	}
	// A handshake that is refused ends its TCP connection too, rather than
	// leaving it open for keep-alive: a client that was refused reconnects
	// with a new handshake anyway. Accept replaces the header when it upgrades.
	w.Header().Set("Connection", "close")
	now := time.Now()
	domain := r.Host
	if host, _, err := net.SplitHostPort(r.Host); err == nil {
		domain = host // API Gateway's domainName never has a port
	}
	hc, err := s.hub.Reserve(newConnectionID(), hub.Peer{SourceIP: sourceIP(r), UserAgent: r.UserAgent()}, now)
	if err != nil {
		s.log.Warn("connection refused", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, nil, map[string]string{"message": "Service Unavailable"})
		return
	}
	c := &wsConn{Conn: hc, domain: domain}
	// Released last, after $disconnect and the request's log line: until
	// then the Hub counts the connection and Shutdown waits for it.
	release, detached := func() { s.hub.Release(hc) }, false
	defer func() {
		if !detached {
			afterRequest(w, release)
		}
	}()

	req := s.connectEvent(r, c, now, pathClientID)
	log := s.log.With("connectionId", c.ID(), "clientId", clip(clientIDOf(req)))
	ctx, cancel := context.WithTimeout(r.Context(), s.routeTimeout(ConnectFunction))
	resp, err := s.routes.Connect(ctx, req)
	cancel()
	if err != nil {
		// API Gateway answers a failed integration with a bare 500.
		log.Error("$connect integration failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, nil, map[string]string{"message": "Internal server error"})
		return
	}
	if resp.StatusCode < 200 || resp.StatusCode > 599 {
		// What API Gateway does with a proxy response without a valid status.
		log.Error("$connect integration answered without a valid statusCode", "statusCode", resp.StatusCode)
		writeJSON(w, http.StatusBadGateway, nil, map[string]string{"message": "Internal server error"})
		return
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		writeRouteRefusal(w, resp)
		return
	}

	c.Open()
	// The server's read and write deadlines bound the handshake request.
	// net/http documents that a hijacked connection may keep them, and the
	// WebSocket would then die after writeTimeout whatever its traffic.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	ws, err := websocket.Accept(smallBuffers{w}, r, s.acceptOptions(resp))
	if err != nil {
		// Accept has answered the client. $connect registered the
		// connection, so it is unregistered as after any close.
		log.Info("websocket handshake failed", "err", err)
		c.Abandon("handshake failed")
		s.disconnect(c, log)
		return
	}
	log.Info("websocket open")
	// The handler returns and the connection runs on a goroutine of its
	// own, so that net/http lets go of what it holds for a request while
	// its handler runs: the connection's 4 KB read and write buffers, the
	// request, and a stack nine frames deeper. The request ends, its line
	// logged, when the connection does.
	detached = true
	end := detach(w, release)
	go func() {
		c.Serve(ws, func(typ websocket.MessageType, data []byte) { s.routeMessage(c, typ, data, log) })
		s.disconnect(c, log)
		end()
	}()
}

// Buffer sizes of an accepted WebSocket's connection, which it holds for
// its whole life. What a client sends is small (pings, resumes); a write is
// one event, which goes out in one system call with its frame header when
// it fits.
const (
	wsReadBuffer  = 256
	wsWriteBuffer = 1024
)

// smallBuffers is a ResponseWriter whose Hijack hands websocket.Accept the
// connection with wsReadBuffer and wsWriteBuffer bytes of buffers instead of
// net/http's 4 KB each: 80 MB at 10,000 connections, for messages of a few
// hundred bytes.
type smallBuffers struct{ http.ResponseWriter }

func (b smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(b.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// net/http sends the handshake's answer before it hijacks; flushing is
	// only a guard.
	if err := brw.Writer.Flush(); err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("flush the handshake: %w", err)
	}
	// A client may send its first message as soon as it has the answer,
	// and net/http's read-ahead may have taken its first bytes already.
	// websocket.Accept reads on from what the reader it gets holds buffered,
	// then from the connection: the bytes must be in the new reader's buffer.
	early, _ := brw.Reader.Peek(brw.Reader.Buffered())
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn), max(wsReadBuffer, len(early)))
	if _, err := br.Peek(len(early)); err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("keep the bytes read ahead: %w", err)
	}
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(conn, wsWriteBuffer)), nil
}

// routeMessage runs $default for one client message and sends its answer
// back, as the route response of API Gateway's $default route does.
func (s *Server) routeMessage(c *wsConn, typ websocket.MessageType, data []byte, log *slog.Logger) {
	req := s.messageEvent(c, typ, data)
	ctx, cancel := context.WithTimeout(context.Background(), s.routeTimeout(DefaultFunction))
	defer cancel()
	resp, err := s.routes.Default(ctx, req)
	var reply []byte
	switch {
	case err != nil:
		log.Error("$default integration failed", "err", err)
		// What API Gateway sends a client whose message's integration failed.
		reply, _ = json.Marshal(map[string]string{
			"message":      "Internal server error",
			"connectionId": c.ID(),
			"requestId":    req.RequestContext.RequestID,
		})
	case resp.IsBase64Encoded:
		reply, err = base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			log.Error("$default answered invalid base64", "err", err)
			return
		}
	default:
		reply = []byte(resp.Body)
	}
	if len(reply) == 0 {
		return
	}
	if err := s.hub.PostReply(ctx, c.ID(), reply); err != nil {
		log.Info("route response not sent", "err", err)
	}
}

// disconnect runs $disconnect. API Gateway calls it best effort and ignores
// its answer; a failure is logged.
func (s *Server) disconnect(c *wsConn, log *slog.Logger) {
	code, reason := c.CloseStatus()
	req := s.disconnectEvent(c, code, reason)
	ctx, cancel := context.WithTimeout(context.Background(), s.routeTimeout(DisconnectFunction))
	defer cancel()
	if _, err := s.routes.Disconnect(ctx, req); err != nil {
		log.Error("$disconnect integration failed", "err", err)
	}
	log.Info("websocket closed", "code", int(code), "reason", reason)
}

func (s *Server) acceptOptions(connect events.APIGatewayProxyResponse) *websocket.AcceptOptions {
	// The origin is $connect's to check (handler.Origins), as in the cloud.
	opts := &websocket.AcceptOptions{InsecureSkipVerify: true}
	// As on API Gateway, a subprotocol is agreed only if $connect names it.
	if p := connect.Headers["Sec-WebSocket-Protocol"]; p != "" {
		opts.Subprotocols = []string{p}
	}
	return opts
}

// requestContext is the requestContext API Gateway puts in every event.
func (s *Server) requestContext(c *wsConn, routeKey, eventType string, now time.Time) events.APIGatewayWebsocketProxyRequestContext {
	requestID := newConnectionID()
	return events.APIGatewayWebsocketProxyRequestContext{
		RouteKey:          routeKey,
		EventType:         eventType,
		ExtendedRequestID: requestID,
		RequestID:         requestID,
		RequestTime:       now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
		RequestTimeEpoch:  now.UnixMilli(),
		MessageDirection:  "IN",
		Stage:             s.cfg.Stage,
		ConnectedAt:       c.ConnectedAt().UnixMilli(),
		Identity:          events.APIGatewayRequestIdentity{SourceIP: c.Peer().SourceIP, UserAgent: c.Peer().UserAgent},
		DomainName:        c.domain,
		ConnectionID:      c.ID(),
		APIID:             apiID,
	}
}

// connectEvent is the $connect event of the handshake request r: its
// headers, its query string and, on the seed's path, the client_id path
// parameter.
func (s *Server) connectEvent(r *http.Request, c *wsConn, now time.Time, pathClientID bool) events.APIGatewayWebsocketProxyRequest {
	req := events.APIGatewayWebsocketProxyRequest{
		Headers:           map[string]string{"Host": r.Host},
		MultiValueHeaders: map[string][]string{"Host": {r.Host}},
		RequestContext:    s.requestContext(c, "$connect", "CONNECT", now),
	}
	for name, values := range r.Header {
		req.Headers[name] = values[0]
		req.MultiValueHeaders[name] = values
	}
	for name, value := range s.forwardedHeaders(r, c) {
		req.Headers[name] = value
		req.MultiValueHeaders[name] = []string{value}
	}
	if q := r.URL.Query(); len(q) > 0 {
		req.QueryStringParameters = make(map[string]string, len(q))
		req.MultiValueQueryStringParameters = q
		for name, values := range q {
			req.QueryStringParameters[name] = values[0]
		}
	}
	if pathClientID {
		req.PathParameters = map[string]string{"client_id": r.PathValue("client_id")}
	}
	return req
}

// forwardedHeaders are the headers API Gateway adds for its backend.
func (s *Server) forwardedHeaders(r *http.Request, c *wsConn) map[string]string {
	proto, port := "http", "80"
	if r.TLS != nil {
		proto, port = "https", "443"
	}
	if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, p, err := net.SplitHostPort(addr.String()); err == nil {
			port = p
		}
	}
	return map[string]string{"X-Forwarded-For": c.Peer().SourceIP, "X-Forwarded-Proto": proto, "X-Forwarded-Port": port}
}

// messageEvent is the $default event of one client message. Binary frames
// arrive base64-encoded, as API Gateway passes them to Lambda.
func (s *Server) messageEvent(c *wsConn, typ websocket.MessageType, data []byte) events.APIGatewayWebsocketProxyRequest {
	req := events.APIGatewayWebsocketProxyRequest{
		RequestContext: s.requestContext(c, "$default", "MESSAGE", time.Now()),
		Body:           string(data),
	}
	req.RequestContext.MessageID = newConnectionID()
	if typ == websocket.MessageBinary {
		req.Body = base64.StdEncoding.EncodeToString(data)
		req.IsBase64Encoded = true
	}
	return req
}

// disconnectEvent is the $disconnect event, with the close code and reason.
func (s *Server) disconnectEvent(c *wsConn, code websocket.StatusCode, reason string) events.APIGatewayWebsocketProxyRequest {
	req := events.APIGatewayWebsocketProxyRequest{
		Headers:        map[string]string{"Host": c.domain, "X-Forwarded-For": c.Peer().SourceIP},
		RequestContext: s.requestContext(c, "$disconnect", "DISCONNECT", time.Now()),
	}
	req.RequestContext.DisconnectStatusCode = int64(code)
	req.RequestContext.DisconnectReason = &reason
	return req
}

// clientIDOf is the client id a $connect event names, for log lines.
func clientIDOf(req events.APIGatewayWebsocketProxyRequest) string {
	if id, ok := req.PathParameters["client_id"]; ok {
		return id
	}
	return req.QueryStringParameters["client_id"]
}

// writeRouteRefusal answers a handshake that $connect refused with the
// route's status, headers and body.
func writeRouteRefusal(w http.ResponseWriter, resp events.APIGatewayProxyResponse) {
	for name, value := range resp.Headers {
		w.Header().Set(name, value)
	}
	for name, values := range resp.MultiValueHeaders {
		w.Header()[http.CanonicalHeaderKey(name)] = values
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if b, err := base64.StdEncoding.DecodeString(resp.Body); err == nil {
			body = b
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// isUpgrade reports whether r asks for a WebSocket; websocket.Accept checks
// the rest of the handshake.
func isUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// sourceIP is the client's address as API Gateway reports it.
func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// writeJSON answers with status, the extra headers and v as JSON.
func writeJSON(w http.ResponseWriter, status int, headers map[string]string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		body = []byte(`{"message":"Internal server error"}`)
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	for name, value := range headers {
		w.Header().Set(name, value)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
