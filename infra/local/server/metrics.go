package server

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wsnotify/wsnotify/shared/metrics/prom"
	"github.com/wsnotify/wsnotify/shared/notify"
)

// Local mode serves the service's figures at GET /metrics in the Prometheus
// text format: the ones the Lambda functions write as CloudWatch metrics
// (shared/metrics), for what local mode runs in-process, and the exact
// number of open connections and slow-consumer closes, which only a process
// that holds the WebSockets knows. The Go runtime's and the process's own
// figures (memory, goroutines, file descriptors) come with them.
//
// /metrics is on the control plane: a page of any site could otherwise read
// how busy a developer's service is (with DNS rebinding, across origins),
// and beyond loopback it is for the holder of the control token only.
//
// Each Server has its own registry, not the client library's global one, so
// that servers in one process (tests) count apart.

// instrument registers the figures of s's connections and notifier, and
// returns cfg with the notifier's Metrics set, unless the caller set its own.
func (s *Server) instrument(cfg notify.Config) (notify.Config, error) {
	if s.cfg.Stage == "metrics" {
		// GET /{stage} is the raw API Gateway URL's WebSocket endpoint.
		return cfg, fmt.Errorf("stage %q: the name of local mode's /metrics", s.cfg.Stage)
	}
	reg := prometheus.NewRegistry()
	m, err := prom.New(reg, func() (int64, uint64) {
		st := s.hub.Stats()
		return st.Open, st.SlowConsumerCloses
	})
	if err != nil {
		return cfg, err
	}
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return cfg, fmt.Errorf("register metrics: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return cfg, fmt.Errorf("register metrics: %w", err)
	}
	s.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
	if cfg.Metrics == nil {
		cfg.Metrics = m
	}
	return cfg, nil
}

// serveMetrics answers GET /metrics.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) { s.metrics.ServeHTTP(w, r) }

// refuseMetrics answers a refused scrape: plain text, as the format is.
func refuseMetrics(w http.ResponseWriter, reason string) {
	http.Error(w, reason, http.StatusForbidden)
}
