package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/wsnotify/wsnotify/infra/iamcheck"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/store"
)

// managementLatency is how long the stand-in for API Gateway's Management
// API takes to answer each request, as a post in the cloud takes.
const managementLatency = 20 * time.Millisecond

// slowManagement forwards the functions' Management API calls to local
// mode after managementLatency, counting posts and the API Gateway message
// units they would be billed (one per 32 KB or part of it).
type slowManagement struct {
	posts, units, bytes atomic.Int64
}

func (m *slowManagement) handler(stageURL string) http.Handler {
	u, _ := url.Parse(stageURL)
	u.Path = "" // the functions' requests carry the stage in their path
	proxy := httputil.NewSingleHostReverseProxy(u)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/@connections/") {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			m.posts.Add(1)
			m.bytes.Add(int64(len(body)))
			m.units.Add(int64((len(body) + 32*1024 - 1) / (32 * 1024)))
		}
		time.Sleep(managementLatency) // the stand-in's answer time, not a wait in the test
		proxy.ServeHTTP(w, r)
	})
}

// TestAReplayOfTheHistoryThroughTheDefaultBinary resumes a history through
// the built DefaultFunction under the emulator, its Management API
// answering after 20 ms as API Gateway's would: the replay is tens of posts,
// well within the function's timeout. WSNOTIFY_REPLAY_EVENTS sets the
// history's size (default 1,500; 10,000 for the figures in the closing
// note of the resume work).
func TestAReplayOfTheHistoryThroughTheDefaultBinary(t *testing.T) {
	t.Parallel()
	total := 1500
	if v := os.Getenv("WSNOTIFY_REPLAY_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > notify.DefaultHistoryMaxEvents {
			t.Fatalf("WSNOTIFY_REPLAY_EVENTS=%q: want 1 to %d", v, notify.DefaultHistoryMaxEvents)
		}
		total = n
	}
	const key, owner, table = "wsn_replay_binaries_key", "acct_replay", "wsnotify-replay"
	// Writing the history to dynalite takes most of it: some 40 ms an event.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute+time.Duration(total)*100*time.Millisecond)
	defer cancel()

	var mgmt slowManagement
	addr, st, _ := startBinariesOn(ctx, t, dynaliteTable(t, table), key, owner, func(stageURL string) string {
		slow := httptest.NewServer(mgmt.handler(stageURL))
		t.Cleanup(slow.Close)
		return slow.URL + "/" + iamcheck.Stage
	})
	// The history, written as the publishers write it, 16 at a time.
	var g errgroup.Group
	g.SetLimit(16)
	for i := 1; i <= total; i++ {
		g.Go(func() error {
			ev := event.JobComplete{Type: event.TypeJobComplete, JobID: fmt.Sprintf("job-%06d", i), Status: "completed", Organized: int64(i)}
			body, err := event.Marshal(ev)
			if err != nil {
				return err
			}
			_, _, err = st.RecordEvent(ctx, store.Event{OwnerID: owner, ID: fmt.Sprintf("evt_%06d", i), Type: string(ev.Kind()), JobID: ev.JobID,
				Body: body, ExpiresAt: time.Now().Add(time.Hour)}, notify.DefaultHistoryMaxEvents, time.Now())
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}

	c := dialLocal(t, addr, "resumer", key)
	c.SetReadLimit(notify.MaxMessageBytes)
	started := time.Now()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"action":"resume","since":0}`)); err != nil {
		t.Fatal(err)
	}
	frames, next := 0, int64(1)
	for {
		rctx, rcancel := context.WithTimeout(ctx, processWait)
		_, data, err := c.Read(rctx)
		rcancel()
		if err != nil {
			t.Fatalf("after %d replay messages, up to seq %d: %v", frames, next-1, err)
		}
		var m struct {
			Type     string `json:"type"`
			Seq      int64  `json:"seq"`
			Replayed int    `json:"replayed"`
			Events   []struct {
				Seq int64 `json:"seq"`
			} `json:"events"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if m.Type == "resumed" {
			if m.Seq != int64(total) || m.Replayed != total || next != int64(total)+1 {
				t.Fatalf("resumed %s after seq %d; want all %d", data, next-1, total)
			}
			break
		}
		if m.Type != "replay" {
			t.Fatalf("got %.200s during the replay", data)
		}
		frames++
		for _, e := range m.Events {
			if e.Seq != next {
				t.Fatalf("seq %d where %d was due", e.Seq, next)
			}
			next++
		}
	}
	took := time.Since(started)
	posts := mgmt.posts.Load()
	// Every replay message is at most 128 KB: 4 units each at most.
	if posts != int64(frames)+1 || posts > int64(total/500)+2 {
		t.Fatalf("%d posts for %d events in %d replay messages: want the messages and resumed only", posts, total, frames)
	}
	if took > 10*time.Second {
		t.Fatalf("the replay took %v, past DefaultFunction's timeout", took)
	}
	t.Logf("replay of %d events through the default binary, posts answered after %v: %d posts (%d replay messages + resumed), %d KB, %d message units, resumed after %v",
		total, managementLatency, posts, frames, mgmt.bytes.Load()/1024, mgmt.units.Load(), took.Round(time.Millisecond))
}
