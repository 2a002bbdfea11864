package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/handler"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/publishapi"
	"github.com/wsnotify/wsnotify/shared/push/hub"
	"github.com/wsnotify/wsnotify/shared/store/memory"
)

// Defaults of Config.
const (
	DefaultStage = "local"
	// DefaultRouteTimeout is API Gateway's integration timeout (29 s).
	DefaultRouteTimeout = 29 * time.Second
)

// HTTP server limits. The WebSocket route lifts the read and write deadlines
// once the handshake is accepted; they bound every other request.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second // a large fan-out runs inside one Invoke request
	idleTimeout       = 2 * time.Minute
)

// Route is one WebSocket route's integration, shaped like the Lambda
// function behind it: an API Gateway WebSocket event in, a proxy response
// out. By default it is a shared/handler function called in-process; a Route
// that invokes the function on a Lambda endpoint instead slots in unchanged.
type Route func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error)

// Routes are the integrations of the three WebSocket routes. A nil field
// takes the in-process shared/handler function.
type Routes struct {
	Connect    Route // $connect: a non-2xx status refuses the handshake
	Disconnect Route // $disconnect: its answer is ignored
	Default    Route // $default: a non-empty body is sent back to the client
}

// Store is what local mode keeps connections and API keys in: the embedded
// memory store by default, the DynamoDB store when one is given.
type Store interface {
	notify.Store
	auth.KeyStore
	PutKey(ctx context.Context, k auth.Key) error
}

var _ Store = (*memory.Store)(nil)

// Config is local mode's configuration. Zero values take the defaults.
type Config struct {
	// APIKeys maps each API key to the owner it belongs to. Keys are stored
	// as SHA-256 hashes (auth.Hash) and never logged.
	APIKeys map[string]string
	// Stage names the stage in events and the raw API Gateway URL shape
	// GET /{Stage}?client_id=…&token=… (default DefaultStage).
	Stage string
	// UploadPrefix is the S3 key prefix of uploads (default handler.DefaultUploadPrefix).
	UploadPrefix string
	// Connections bounds the WebSocket connections: outgoing queues, write
	// timeout, idle timeout and maximum age (zero values: the hub's
	// defaults, API Gateway's limits).
	Connections hub.Config
	// RouteTimeout bounds one route integration call (default DefaultRouteTimeout).
	RouteTimeout time.Duration
	// OriginPatterns lists the browser origins allowed to connect, as the
	// cloud's ALLOWED_ORIGINS does: the in-process $connect handler refuses
	// others with 403 (see handler.Origins; a handshake without Origin, which
	// only non-browser clients send, is let through). Empty allows every
	// origin, as API Gateway does. With ConnectFunction on a function
	// endpoint, set ALLOWED_ORIGINS in that function's environment instead.
	OriginPatterns []string
	// Tokens checks signed tokens beside the API keys (nil: signed tokens
	// are refused like an unknown key).
	Tokens *auth.TokenVerifier
	// Store keeps connections and keys (default: a new memory store).
	Store Store
	// Routes overrides route integrations (default: in-process handlers).
	Routes Routes
	// FunctionEndpoints runs functions on Lambda endpoints instead of
	// in-process: template logical id (FunctionNames) → Invoke API URL, such
	// as aws-lambda-rie's http://127.0.0.1:9001/2015-03-31/functions/function/invocations
	// or `sam local start-lambda`'s. The WebSocket routes of ConnectFunction,
	// DisconnectFunction and DefaultFunction invoke it there (unless Routes
	// sets them), and the Invoke API forwards that function's calls to it.
	FunctionEndpoints map[string]string
	// FunctionTimeouts overrides functions' Timeout by template logical id
	// (default: each function's Timeout in template.yaml). Every invocation
	// runs with it as its deadline, as in Lambda; a route's is also bounded
	// by RouteTimeout.
	FunctionTimeouts map[string]time.Duration
	// ControlToken, when set, is the credential every control-plane request
	// (Invoke API, Management API) must carry as "Authorization: Bearer …".
	// local mode requires one when it listens beyond loopback (control.go).
	ControlToken string
	// Notify configures the Notifier (zero: its defaults).
	Notify notify.Config
	// Logger receives text logs (default slog.Default()).
	Logger *slog.Logger
}

// stagePattern is API Gateway's rule for stage names.
var stagePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// Server is local mode. Create it with New, run it with Serve (or mount it
// as an http.Handler) and stop it with Shutdown.
type Server struct {
	cfg       Config
	log       *slog.Logger
	store     Store
	hub       *hub.Hub
	routes    Routes
	functions map[string]function      // what the Invoke API serves in-process
	endpoints map[string]*endpoint     // functions that run on FunctionEndpoints
	timeouts  map[string]time.Duration // each function's Timeout
	running   sync.WaitGroup           // in-process invocations (run)
	handler   http.Handler
	metrics   http.Handler // /metrics (metrics.go)
	http      *http.Server
	// listenAddr is the net.Addr Serve listens on, for the control plane's
	// Host check.
	listenAddr atomic.Value
}

// New builds local mode from cfg: the store with cfg's keys, the Hub, the
// Notifier over both, the handlers, and the HTTP routes.
func New(cfg Config) (*Server, error) {
	if cfg.Stage == "" {
		cfg.Stage = DefaultStage
	}
	endpoints, err := newEndpoints(cfg.FunctionEndpoints)
	if err != nil {
		return nil, err
	}
	if !stagePattern.MatchString(cfg.Stage) {
		return nil, fmt.Errorf("stage %q: must be 1-128 characters of A-Z a-z 0-9 _ -", cfg.Stage)
	}
	origins, err := handler.NewOrigins(cfg.OriginPatterns)
	if err != nil {
		return nil, err
	}
	if _, remote := endpoints[ConnectFunction]; remote && len(cfg.OriginPatterns) > 0 {
		return nil, errors.New("origin patterns are checked by the in-process $connect handler, and ConnectFunction runs at a function endpoint: set ALLOWED_ORIGINS in its environment instead")
	}
	if cfg.ControlToken != "" {
		if err := CheckControlToken(cfg.ControlToken); err != nil {
			return nil, err
		}
	}
	timeouts, err := functionTimeouts(cfg.FunctionTimeouts)
	if err != nil {
		return nil, err
	}
	if cfg.RouteTimeout <= 0 {
		cfg.RouteTimeout = DefaultRouteTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Store == nil {
		cfg.Store = memory.New()
	}
	log := cfg.Logger
	now := time.Now()
	for key, owner := range cfg.APIKeys {
		if key == "" {
			return nil, fmt.Errorf("API key of owner %q is empty", owner)
		}
		if !event.ValidOwnerID(owner) {
			return nil, fmt.Errorf("owner %q: must be 1-%d characters of A-Z a-z 0-9 . _ : @ -", owner, event.MaxOwnerIDLength)
		}
		k := auth.NewKeyRecord(key, owner, "local mode", now)
		if err := cfg.Store.PutKey(context.Background(), k); err != nil {
			return nil, fmt.Errorf("store key %s of %s: %w", auth.Prefix(k.Hash), owner, err)
		}
	}

	s := &Server{cfg: cfg, log: log, store: cfg.Store, timeouts: timeouts}
	hubCfg := cfg.Connections
	hubCfg.Logger = log
	if s.hub, err = hub.New(hubCfg); err != nil {
		return nil, fmt.Errorf("connections: %w", err)
	}
	notifyCfg, err := s.instrument(cfg.Notify)
	if err != nil {
		return nil, err
	}
	notifier := notify.New(auth.NewAuthenticator(cfg.Store).WithTokens(cfg.Tokens), cfg.Store, s.hub, log, notifyCfg)

	connect := handler.NewConnect(notifier, log, origins)
	disconnect := handler.NewDisconnect(notifier, log)
	dflt := handler.NewDefault(log, notifier)
	// No queue here: a record that can never succeed is logged and
	// reported failed, as SQS would retry it before its redrive.
	jobs := handler.NewJobEvents(notifier, log, nil)
	uploads := handler.NewS3Upload(notifier, log, cfg.UploadPrefix)
	api := publishapi.New(notifier, log)
	s.routes = Routes{Connect: connect.Handle, Disconnect: disconnect.Handle, Default: dflt.Handle}
	s.endpoints = endpoints
	for name, route := range map[string]*Route{ConnectFunction: &s.routes.Connect, DisconnectFunction: &s.routes.Disconnect, DefaultFunction: &s.routes.Default} {
		if e, ok := endpoints[name]; ok {
			*route = e.route(name)
		}
	}
	if cfg.Routes.Connect != nil {
		s.routes.Connect = cfg.Routes.Connect
	}
	if cfg.Routes.Disconnect != nil {
		s.routes.Disconnect = cfg.Routes.Disconnect
	}
	if cfg.Routes.Default != nil {
		s.routes.Default = cfg.Routes.Default
	}
	// The logical ids of template.yaml, so that a call aimed at
	// `sam local start-lambda` works here unchanged. The route functions are
	// not among them: only the WebSocket endpoint runs those (invoke).
	s.functions = map[string]function{
		JobEventsFunction: lambdaFunction(jobs.Handle),
		S3UploadFunction:  lambdaFunction(uploads.Handle),
		// The HTTP API's function, as `sam local start-lambda` serves it;
		// the routes themselves are served below.
		PublishFunction: lambdaFunction(api.HandleLambda),
	}

	mux := http.NewServeMux()
	// {client_id...} takes the rest of the path, so that "a/b" reaches the
	// $connect handler and is refused there (400) like any bad client id.
	mux.HandleFunc("GET /api/v1/ws/{client_id...}", s.webSocket(true))
	// The raw API Gateway URL: client_id and token in the query string.
	mux.HandleFunc("GET /"+cfg.Stage, s.webSocket(false))
	mux.HandleFunc("GET /{$}", serveDemoPage)             // the live demo page (demo.go)
	mux.HandleFunc("GET /wsnotify.js", serveClientModule) // the JavaScript client (clients/js)
	// The control plane: only callers on this machine that are no web page.
	mux.HandleFunc("POST /2015-03-31/functions/{function}/invocations", s.controlPlane(s.invoke, refuseInvoke))
	for _, prefix := range []string{"", "/{stage}"} {
		mux.HandleFunc("POST "+prefix+"/@connections/{id}", s.controlPlane(s.postToConnection, refuseManagement))
		mux.HandleFunc("GET "+prefix+"/@connections/{id}", s.controlPlane(s.getConnection, refuseManagement))
		mux.HandleFunc("DELETE "+prefix+"/@connections/{id}", s.controlPlane(s.deleteConnection, refuseManagement))
	}
	mux.HandleFunc("GET /metrics", s.controlPlane(s.serveMetrics, refuseMetrics))
	// The publish API (shared/publishapi), as the cloud's HTTP API serves
	// it; IAM there, the control plane's rules here.
	// With PublishFunction at a function endpoint, that function answers
	// them, as behind the cloud's HTTP API (publishroute.go).
	// Served here, a request is bounded by PublishFunction's Timeout, as
	// Lambda bounds the function's invocation: a store that does not
	// answer ends it with a 500 (and the results published before), never
	// a request that hangs (make chaos: 2 s of store latency held a batch
	// past any client's patience).
	servePublish, serveConnections := s.boundBy(PublishFunction, api.ServePublish), s.boundBy(PublishFunction, api.ServeConnections)
	if e, ok := endpoints[PublishFunction]; ok {
		servePublish = s.publishRoute(e, publishapi.RoutePublish)
		serveConnections = s.publishRoute(e, publishapi.RouteConnections)
	}
	mux.HandleFunc("POST /v1/publish", s.controlPlane(servePublish, refusePublishAPI))
	mux.HandleFunc("GET /v1/owners/{ownerId}/connections", s.controlPlane(serveConnections, refusePublishAPI))
	s.handler = s.logRequests(mux)
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// ServeHTTP serves every local mode route, for a caller that runs its own
// http.Server; it must still call Shutdown to close the WebSockets.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Serve accepts connections on l until Shutdown, then returns nil.
func (s *Server) Serve(l net.Listener) error {
	s.listenAddr.Store(l.Addr())
	err := s.http.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("serve on %s: %w", l.Addr(), err)
}

// Start serves on l in a goroutine of its own. failed receives Serve's
// error should serving fail before stop. stop shuts the server down within
// shutdownTimeout (see Shutdown), waits for Serve to return and returns
// both their errors; the first call does it, later ones return the same.
func (s *Server) Start(l net.Listener, shutdownTimeout time.Duration) (failed <-chan error, stop func() error) {
	failedc := make(chan error, 1)
	served := make(chan struct{})
	var serveErr error
	go func() {
		defer close(served)
		if serveErr = s.Serve(l); serveErr != nil {
			failedc <- serveErr
		}
	}()
	return failedc, sync.OnceValue(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		err := s.Shutdown(ctx)
		<-served
		return errors.Join(err, serveErr)
	})
}

// Shutdown stops accepting, lets the HTTP requests in flight finish, then
// closes every WebSocket with 1001 (going away) and returns once each one's
// $disconnect has run, or ctx has ended.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	if err := s.http.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("shut down HTTP server: %w", err))
	}
	if err := s.hub.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	// Invocations that ran past their deadline end soon after it: their
	// context has ended.
	ran := make(chan struct{})
	go func() { s.running.Wait(); close(ran) }()
	select {
	case <-ran:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("wait for timed-out invocations: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}

// Hub returns the in-process pusher, for tests and load tests that want to
// count connections or post to one directly.
func (s *Server) Hub() *hub.Hub { return s.hub }

// Store returns the connection and key store.
func (s *Server) Store() Store { return s.store }

// statusRecorder remembers a response's status for the request log. Unwrap
// lets websocket.Accept and http.ResponseController reach the hijacker and
// the deadlines of the real ResponseWriter.
type statusRecorder struct {
	http.ResponseWriter
	status int
	after  []func() // run once the request's line is logged (afterRequest)
	// line logs the request's line; detached says the request ends later
	// than its handler (detach).
	line     func(status int)
	detached bool
}

// afterRequest runs f once the request w answers has ended and been logged,
// or at once if w does not come through logRequests. A WebSocket releases its
// connection this way, so that Shutdown, which waits for every release, also
// waits for the connection's request line and no log line comes after it.
func afterRequest(w http.ResponseWriter, f func()) {
	if rec, ok := w.(*statusRecorder); ok {
		rec.after = append(rec.after, f)
		return
	}
	f()
}

func (r *statusRecorder) runAfter() {
	for _, f := range r.after {
		f()
	}
}

// detach makes the request that w answers end when the returned end is
// called, rather than when its handler returns: only then is its line
// logged and are its afterRequest functions, and then release, run. The
// handler may return before; nothing may use w after this call. Without
// logRequests, end just runs release.
func detach(w http.ResponseWriter, release func()) (end func()) {
	rec, ok := w.(*statusRecorder)
	if !ok {
		return release
	}
	rec.detached = true
	rec.after = append(rec.after, release)
	// net/http's response, and the connection state it holds, may go once
	// the handler has returned.
	rec.ResponseWriter = nil
	return func() {
		rec.line(rec.status)
		rec.runAfter()
	}
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// logRequests logs one line per request, after it ends (for a WebSocket,
// when the connection closes). The path is logged without its query string,
// which carries the client's token.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// What the line needs, and not the request, which a detached
		// request's line would otherwise keep.
		ctx, method, path, remote := context.WithoutCancel(r.Context()), r.Method, clip(r.URL.Path), r.RemoteAddr
		rec := &statusRecorder{ResponseWriter: w, line: func(status int) {
			s.log.LogAttrs(ctx, slog.LevelInfo, "request",
				slog.String("method", method),
				slog.String("path", path),
				slog.Int("status", status),
				slog.Duration("duration", time.Since(start)),
				slog.String("remote", remote))
		}}
		defer func() { // deferred: it must run even if the handler panics
			if !rec.detached {
				rec.runAfter()
			}
		}()
		next.ServeHTTP(rec, r)
		if !rec.detached {
			rec.line(rec.status)
		}
	})
}

// functionTimeouts is template.yaml's Timeout of each function, with the
// overrides applied.
func functionTimeouts(overrides map[string]time.Duration) (map[string]time.Duration, error) {
	table, err := functionTable()
	if err != nil {
		return nil, err
	}
	timeouts := make(map[string]time.Duration, len(table))
	for name, f := range table {
		timeouts[name] = f.Timeout
	}
	for name, d := range overrides {
		if !isFunctionName(name) || d <= 0 {
			return nil, fmt.Errorf("function timeout %s=%v: want a function of the template and a positive duration", name, d)
		}
		timeouts[name] = d
	}
	return timeouts, nil
}

// routeTimeout bounds one call of a route's function: its Timeout, and API
// Gateway's integration timeout, whichever ends first.
func (s *Server) routeTimeout(function string) time.Duration {
	return min(s.cfg.RouteTimeout, s.timeouts[function])
}

// refuseInvoke answers a refused Invoke API call as Lambda answers a caller
// without permission.
func refuseInvoke(w http.ResponseWriter, reason string) {
	writeJSON(w, http.StatusForbidden, map[string]string{"x-amzn-ErrorType": "AccessDeniedException"},
		lambdaServiceError{Type: "User", Message: reason})
}

// refusePublishAPI answers a refused publish API call in the API's own
// refusal shape (docs/openapi.yaml).
func refusePublishAPI(w http.ResponseWriter, reason string) {
	publishapi.Write(w, publishapi.Forbidden(reason))
}

// refuseManagement answers a refused Management API call as API Gateway
// answers one it does not authorize.
func refuseManagement(w http.ResponseWriter, reason string) {
	managementFail(w, http.StatusForbidden, "ForbiddenException", reason)
}
