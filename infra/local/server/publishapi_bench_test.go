package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/local/server"
)

// BenchmarkPublishAPI measures local mode's POST /v1/publish of one
// owner-wide event to an owner with 1 and with 100 WebSocket connections,
// one request at a time from one HTTP client: each request's time until its
// answer (the event numbered, kept and queued to every connection), as p50
// and p99, and the requests answered per second. Every connection must then
// receive every event, so nothing is measured that did not arrive.
//
//	go test -run '^$' -bench PublishAPI -benchtime 2000x ./infra/local/server/
func BenchmarkPublishAPI(b *testing.B) {
	for _, conns := range []int{1, 100} {
		b.Run(fmt.Sprintf("connections=%d", conns), func(b *testing.B) { benchPublishAPI(b, conns) })
	}
}

func benchPublishAPI(b *testing.B, conns int) {
	srv, err := server.New(server.Config{APIKeys: map[string]string{keyA: ownerA}, Logger: testLogger()})
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	_, stop := srv.Start(l, wait)
	defer func() { _ = stop() }()
	base := "http://" + l.Addr().String()

	// The clients, each counting what it receives.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var received sync.WaitGroup
	for i := range conns {
		c, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://%s/api/v1/ws/bench-%d?token=%s", l.Addr(), i, keyA), nil)
		if err != nil {
			b.Fatalf("connect %d: %v", i, err)
		}
		defer c.CloseNow()
		received.Add(1)
		go func() {
			defer received.Done()
			for range b.N {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
		}()
	}
	body := []byte(`{"ownerId":"` + ownerA + `","event":` + seedJobProgress + `}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		t0 := time.Now()
		resp, err := client.Post(base+"/v1/publish", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		took = append(took, time.Since(t0))
		if resp.StatusCode != http.StatusOK || !bytes.Contains(answer, []byte(fmt.Sprintf(`"delivered":%d`, conns))) {
			b.Fatalf("publish answered %d %s", resp.StatusCode, answer)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	done := make(chan struct{})
	go func() { received.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatal("not every connection received every event within a minute")
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "ms-p99")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
}
