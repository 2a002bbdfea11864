package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/wsnotify/wsnotify/shared/notify"
)

// ResumeReport is what one resume run measured: clients of one owner that
// all resume the whole history at once.
type ResumeReport struct {
	Events    int `json:"events"`
	Clients   int `json:"clients"`
	Completed int `json:"completed"` // clients that got every event and resumed
	// Frames is the replay messages one client got.
	Frames int `json:"frames"`
	// TimeToResumed is from the resume sent to resumed received: the
	// median and the slowest client.
	TimeToResumedP50 time.Duration `json:"timeToResumedP50"`
	TimeToResumedMax time.Duration `json:"timeToResumedMax"`
	// The server's resident size with the clients connected, its peak
	// during the replays, and the peak's growth per resuming client.
	ServerRSSLoaded      int64 `json:"serverRssLoadedBytes"`
	ServerRSSPeak        int64 `json:"serverRssPeakBytes"`
	RSSPerConnectionPeak int64 `json:"rssPerConnectionPeakBytes"`
}

func (r ResumeReport) String() string {
	return fmt.Sprintf(`resume of %d events by %d clients at once: %d completed
replay messages      %d per client
time to resumed      p50 %v, slowest %v
server RSS           %.1f MiB connected, %.1f MiB peak: %.1f KiB per resuming client`,
		r.Events, r.Clients, r.Completed, r.Frames,
		r.TimeToResumedP50.Round(time.Millisecond), r.TimeToResumedMax.Round(time.Millisecond),
		float64(r.ServerRSSLoaded)/(1<<20), float64(r.ServerRSSPeak)/(1<<20), float64(r.RSSPerConnectionPeak)/1024)
}

// RunResume starts local mode, publishes events job events of one owner,
// connects cfg.Connections clients of it, and has them all resume from 0
// at once, each reading as fast as it can.
func RunResume(ctx context.Context, cfg Config, eventCount int) (ResumeReport, error) {
	if cfg.Connections < 1 || eventCount < 1 || eventCount > notify.DefaultHistoryMaxEvents {
		return ResumeReport{}, fmt.Errorf("need connections >= 1 and 1 to %d events", notify.DefaultHistoryMaxEvents)
	}
	rep := ResumeReport{Events: eventCount, Clients: cfg.Connections}
	var keys, pairs []string
	for k := range (cfg.Connections + 99) / 100 {
		key := fmt.Sprintf("lt_resume_%d_%d", k, time.Now().UnixNano())
		keys = append(keys, key)
		pairs = append(pairs, key+"=owner-resume")
	}
	base, srv, stop, err := startLocal(ctx, cfg, pairs)
	if err != nil {
		return rep, err
	}
	defer stop()

	// The history: batches of 100 job_complete events, each of its own job.
	url := "http://" + base + "/2015-03-31/functions/JobEventsFunction/invocations"
	for first := 0; first < eventCount; first += 100 {
		var sqs events.SQSEvent
		for i := first; i < min(first+100, eventCount); i++ {
			sqs.Records = append(sqs.Records, events.SQSMessage{MessageId: fmt.Sprintf("m%d", i), Body: fmt.Sprintf(
				`{"ownerId":"owner-resume","event":{"type":"job_complete","jobId":"job-%06d","status":"completed","organized":%d,"failed":0}}`, i, i)})
		}
		out, err := invokeJobEvents(url, sqs)
		if err != nil {
			return rep, fmt.Errorf("publish: %w", err)
		}
		if len(out.BatchItemFailures) > 0 {
			return rep, fmt.Errorf("publish: %d of the batch failed", len(out.BatchItemFailures))
		}
	}

	conns := make([]*websocket.Conn, cfg.Connections)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.CloseNow()
			}
		}
	}()
	var dial errgroup.Group
	dial.SetLimit(max(1, cfg.Dialers))
	for i := range conns {
		dial.Go(func() error {
			c, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://%s/api/v1/ws/resumer-%d?token=%s", base, i, keys[i/100]), nil)
			if err != nil {
				return fmt.Errorf("connect %d: %w", i, err)
			}
			c.SetReadLimit(notify.MaxMessageBytes)
			conns[i] = c
			return nil
		})
	}
	if err := dial.Wait(); err != nil {
		return rep, err
	}
	rep.ServerRSSLoaded = rss(srv.Process.Pid)
	peak := sampleRSS(srv.Process.Pid)

	took := make([]time.Duration, len(conns))
	frames := make([]int, len(conns))
	var resumes errgroup.Group
	for i, c := range conns {
		resumes.Go(func() error {
			start := time.Now()
			if err := c.Write(ctx, websocket.MessageText, []byte(`{"action":"resume","since":0}`)); err != nil {
				return err
			}
			next := int64(1)
			for {
				_, data, err := c.Read(ctx)
				if err != nil {
					return fmt.Errorf("client %d after seq %d: %w", i, next-1, err)
				}
				var m struct {
					Type   string `json:"type"`
					Seq    int64  `json:"seq"`
					Events []struct {
						Seq int64 `json:"seq"`
					} `json:"events"`
				}
				if err := json.Unmarshal(data, &m); err != nil {
					return err
				}
				switch m.Type {
				case "replay":
					frames[i]++
					for _, e := range m.Events {
						if e.Seq != next {
							return fmt.Errorf("client %d: seq %d where %d was due", i, e.Seq, next)
						}
						next++
					}
				case "resumed":
					if next != int64(eventCount)+1 {
						return fmt.Errorf("client %d: resumed after seq %d of %d", i, next-1, eventCount)
					}
					took[i] = time.Since(start)
					return nil
				default:
					return fmt.Errorf("client %d: got %.200s", i, data)
				}
			}
		})
	}
	err = resumes.Wait()
	rep.ServerRSSPeak = peak()
	if rep.ServerRSSPeak > rep.ServerRSSLoaded {
		rep.RSSPerConnectionPeak = (rep.ServerRSSPeak - rep.ServerRSSLoaded) / int64(cfg.Connections)
	}
	for i, d := range took {
		if d > 0 {
			rep.Completed++
			rep.Frames = max(rep.Frames, frames[i])
		}
	}
	slices.Sort(took)
	rep.TimeToResumedP50, rep.TimeToResumedMax = took[len(took)/2], took[len(took)-1]
	return rep, err
}
