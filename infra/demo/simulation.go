package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/clients/go/publish"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
)

// simulation plays an organization service and an upload bucket. The
// service publishes its job events as an app's backend does, with the Go
// publisher (publish.Client) through local mode's publish API, each step's
// events in one request; uploads go through local mode's Lambda Invoke
// API, as S3 notifications do in the cloud.
type simulation struct {
	base string // local mode, http://host:port
	step time.Duration
	http *http.Client
	pub  *publish.Client
}

// newSimulation plays against local mode at base.
func newSimulation(base string, step time.Duration) *simulation {
	return &simulation{base: base, step: step, http: &http.Client{Timeout: 30 * time.Second},
		pub: publish.NewLocalClient(base, "")}
}

// upload is one simulated file.
type upload struct {
	name string
	size int64
}

// The files each round uploads.
var uploads = []upload{
	{"holiday-photos.zip", 48_213_504},
	{"invoice-2024-03.pdf", 182_044},
	{"contract-draft.docx", 61_440},
}

// job is one simulated organization job: it works through files, and if
// failAt is not 0, it fails on that file (1-based).
type job struct {
	id     string
	files  []string
	failAt int
	reason string // the error of the failure
}

// jobs are the two jobs of round r: one completes, one fails part way.
func jobs(r int) []job {
	photos := make([]string, 12)
	for i := range photos {
		photos[i] = fmt.Sprintf("Photos/2024/IMG_%04d.jpg", 4100+i)
	}
	invoices := make([]string, 10)
	for i := range invoices {
		invoices[i] = fmt.Sprintf("Invoices/2024/invoice-%02d.pdf", i+1)
	}
	return []job{
		{id: fmt.Sprintf("job_%d_photos", r), files: photos},
		{id: fmt.Sprintf("job_%d_invoices", r), files: invoices, failAt: 6, reason: "Permission denied: Invoices/2024/invoice-06.pdf"},
	}
}

// loop waits for a client of the demo owner, then runs rounds (0: until
// ctx ends), pausing between them.
func (s *simulation) loop(ctx context.Context, conns notify.Store, rounds int, pause time.Duration, out io.Writer) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		list, err := conns.ListConnections(ctx, owner, time.Now())
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("list connections: %w", err)
		}
		if len(list) > 0 {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
	for r := 1; rounds == 0 || r <= rounds; r++ {
		fmt.Fprintf(out, "  Round %d: %d uploads, jobs %s and %s\n", r, len(uploads), jobs(r)[0].id, jobs(r)[1].id)
		if err := s.round(ctx, r); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if rounds != 0 && r == rounds {
			break
		}
		if !s.wait(ctx, pause) {
			return nil
		}
	}
	return nil
}

// round uploads the files, then runs round r's jobs side by side, one step
// of each in turn.
func (s *simulation) round(ctx context.Context, r int) error {
	for i, u := range uploads {
		if err := s.upload(ctx, u.name, u.size, fmt.Sprintf("%d-%d", r, i)); err != nil {
			return err
		}
		if !s.wait(ctx, s.step) {
			return ctx.Err()
		}
	}
	js := jobs(r)
	done := make([]bool, len(js))
	for step := 1; ; step++ {
		var msgs []publish.Message
		for i, j := range js {
			if done[i] {
				continue
			}
			evs, finished := j.events(step)
			done[i] = finished
			for _, ev := range evs {
				msgs = append(msgs, publish.Message{OwnerID: owner, IdempotencyKey: eventKey(j.id, step, ev), Event: ev})
			}
		}
		if len(msgs) == 0 {
			return nil
		}
		if _, err := s.pub.Publish(ctx, msgs...); err != nil {
			return fmt.Errorf("publish step %d of round %d: %w", step, r, err)
		}
		if !s.wait(ctx, s.step) {
			return ctx.Err()
		}
	}
}

// eventKey is the idempotency key of a job's event at a step: were the
// request retried, each event would still be published once.
func eventKey(jobID string, step int, ev event.Event) string {
	return fmt.Sprintf("%s-%d-%s", jobID, step, ev.Kind())
}

// events are what job j publishes at step (1-based), and whether it has
// finished with them.
func (j job) events(step int) ([]event.Event, bool) {
	total := int64(len(j.files))
	switch {
	case j.failAt != 0 && step == j.failAt:
		return []event.Event{
			event.Error{Type: event.TypeError, JobID: j.id, Error: j.reason, Code: "PERMISSION_ERROR"},
			event.JobComplete{Type: event.TypeJobComplete, JobID: j.id, Status: event.StatusFailed, Organized: int64(step - 1), Failed: 1},
		}, true
	case step <= len(j.files):
		return []event.Event{event.JobProgress{
			Type: event.TypeJobProgress, JobID: j.id,
			Progress:       float64(int64(step) * 100 / total),
			ProcessedCount: int64(step), TotalCount: total,
			CurrentFile: j.files[step-1],
		}}, false
	default:
		return []event.Event{event.JobComplete{Type: event.TypeJobComplete, JobID: j.id, Status: event.StatusCompleted, Organized: total}}, true
	}
}

// upload sends the S3 notification of a new object for the demo owner.
func (s *simulation) upload(ctx context.Context, name string, size int64, version string) error {
	var rec events.S3EventRecord
	rec.EventName = "ObjectCreated:Put"
	rec.S3.Bucket.Name = "uploads"
	rec.S3.Object.Key = "uploads/" + owner + "/" + name
	rec.S3.Object.Size = size
	rec.S3.Object.ETag = "demo-" + version
	rec.S3.Object.Sequencer = version
	var resp struct {
		Published int `json:"published"`
	}
	if err := s.invoke(ctx, "S3UploadFunction", events.S3Event{Records: []events.S3EventRecord{rec}}, &resp); err != nil {
		return err
	}
	if resp.Published != 1 {
		return fmt.Errorf("upload %s was not published", name)
	}
	return nil
}

// invoke calls a function through the Invoke API and decodes its answer.
func (s *simulation) invoke(ctx context.Context, function string, payload, out any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/2015-03-31/functions/"+function+"/invocations", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("invoke %s: %w", function, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("invoke %s: %w", function, err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Function-Error") != "" {
		return fmt.Errorf("invoke %s: %d %s", function, resp.StatusCode, answer)
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("invoke %s answered %s: %w", function, answer, err)
	}
	return nil
}

// wait pauses for d, or until ctx ends (false).
func (s *simulation) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
