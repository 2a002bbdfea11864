package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/clients/go/publish"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// screenshotPath is where the page test leaves its screenshot (git-ignored).
const screenshotPath = "test-output/demo.png"

// startDemo serves the demo on a free loopback port until the test ends.
func startDemo(t *testing.T) *demo {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	d, err := start("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return d
}

// q is a JavaScript expression for the text of the element sel finds.
func q(sel string) string {
	return fmt.Sprintf(`document.querySelector(%q)?.textContent`, sel)
}

func TestTheDemoPageShowsJobsErrorsUploadsAndTheConnectionInChromium(t *testing.T) {
	d := startDemo(t)
	sim := newSimulation(d.base, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	send := func(ev event.Event) {
		t.Helper()
		if _, err := sim.pub.Publish(ctx, publish.Message{OwnerID: owner, Event: ev}); err != nil {
			t.Fatal(err)
		}
	}

	b := startBrowser(t)
	p := b.newPage(t, 1100, 600)
	p.navigate(t, d.pageURL())
	p.waitFor(t, "the connection to open", q("#state")+` === 'open'`)
	// Every state the page shows from now on.
	if err := p.eval(t, `window.shownStates = [];
		new MutationObserver(() => shownStates.push(document.querySelector('#state').textContent))
			.observe(document.querySelector('#state'), { childList: true, characterData: true, subtree: true })`, nil); err != nil {
		t.Fatal(err)
	}

	t.Run("a job in progress: its id, a bar, the percentage and the current file", func(t *testing.T) {
		send(event.JobProgress{Type: event.TypeJobProgress, JobID: "job_123", Progress: 65, ProcessedCount: 65, TotalCount: 100, CurrentFile: "document.pdf"})
		card := `[data-job-id="job_123"]`
		p.waitFor(t, "job_123 at 65%", q(card+" .pct")+` === '65%'`)
		p.waitFor(t, "its bar", `document.querySelector('`+card+` .fill').style.width === '65%'`)
		p.waitFor(t, "its id", q(card+" .job-id")+` === 'job_123'`)
		p.waitFor(t, "its current file", q(card+" .current")+` === 'document.pdf (65/100)'`)
	})
	t.Run("an upload: its name and size", func(t *testing.T) {
		if err := sim.upload(ctx, "newfile.pdf", 512000, "example"); err != nil {
			t.Fatal(err)
		}
		p.waitFor(t, "the file's row", q("#files tr .name")+` === 'newfile.pdf' && `+q("#files tr .size")+` === '512 kB'`)
	})
	t.Run("an error in red, with its message and code", func(t *testing.T) {
		send(event.Error{Type: event.TypeError, JobID: "job_123", Error: "Permission denied", Code: "PERMISSION_ERROR"})
		p.waitFor(t, "the error", q("#errors .error .message")+` === 'Permission denied' && `+q("#errors .error .code")+` === 'PERMISSION_ERROR'`)
		p.waitFor(t, "the error in red", `getComputedStyle(document.querySelector('#errors .error')).color === 'rgb(217, 45, 32)'`)
		p.waitFor(t, "the error on its job", q(`[data-job-id="job_123"] .job-error`)+` === 'PERMISSION_ERROR: Permission denied'`)
	})
	t.Run("a finished job: its organized and failed counts", func(t *testing.T) {
		send(event.JobComplete{Type: event.TypeJobComplete, JobID: "job_123", Status: event.StatusCompleted, Organized: 100, Failed: 0})
		card := `[data-job-id="job_123"]`
		p.waitFor(t, "the counts", q(card+" .result")+` === 'organized 100 · failed 0'`)
		p.waitFor(t, "100%", q(card+" .pct")+` === '100%' && document.querySelector('`+card+`').dataset.status === 'completed'`)
	})
	t.Run("the demo's run: one job completes, one fails part way", func(t *testing.T) {
		if err := sim.round(ctx, 1); err != nil {
			t.Fatal(err)
		}
		photos, invoices := `[data-job-id="job_1_photos"]`, `[data-job-id="job_1_invoices"]`
		p.waitFor(t, "the photos job done", q(photos+" .result")+` === 'organized 12 · failed 0' && `+q(photos+" .pct")+` === '100%'`)
		p.waitFor(t, "the invoices job failed at its sixth file", q(invoices+" .result")+` === 'organized 5 · failed 1' && `+q(invoices+" .pct")+` === '50%'`+
			` && document.querySelector('`+invoices+`').dataset.status === 'failed'`)
		p.waitFor(t, "the failure's error", q(invoices+" .job-error")+` === 'PERMISSION_ERROR: Permission denied: Invoices/2024/invoice-06.pdf'`)
		p.waitFor(t, "every upload", `document.querySelectorAll('#files tr').length === 4`)
		// A job still running, for the picture.
		send(event.JobProgress{Type: event.TypeJobProgress, JobID: "job_2_photos", Progress: 58, ProcessedCount: 7, TotalCount: 12, CurrentFile: "Photos/2024/IMG_4106.jpg"})
		p.waitFor(t, "the running job", q(`[data-job-id="job_2_photos"] .pct`)+` === '58%'`)
	})
	if problems := b.Problems(); len(problems) > 0 {
		t.Fatalf("the page reported errors: %q", problems)
	}
	// Let the bars' width transition (0.2 s) end before the picture.
	p.waitFor(t, "the bars to settle", `document.getAnimations().length === 0`)
	out := filepath.Join(testenv.RepoRoot(t), screenshotPath)
	p.screenshot(t, out)
	t.Logf("screenshot: %s", out)

	t.Run("a page opened during the run shows the jobs still running at once", func(t *testing.T) {
		var footer string
		if err := p.eval(t, q("#footer"), &footer); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(footer, "seq –") {
			t.Fatalf("the server numbers no events (the page shows %q)", footer)
		}
		late := b.newPage(t, 1100, 600)
		late.navigate(t, d.pageURL())
		late.waitFor(t, "the running job", q(`[data-job-id="job_2_photos"] .pct`)+` === '58%' && `+
			q(`[data-job-id="job_2_photos"] .current`)+` === 'Photos/2024/IMG_4106.jpg (7/12)'`)
		late.waitFor(t, "no finished job", `document.querySelectorAll('.job').length === 1`)
	})
	t.Run("the connection state, as the client reconnects", func(t *testing.T) {
		var footer string
		if err := p.eval(t, q("#footer"), &footer); err != nil {
			t.Fatal(err)
		}
		clientID, _, _ := strings.Cut(strings.TrimPrefix(footer, "client "), " ")
		conns, err := d.srv.Store().ListConnections(ctx, owner, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		closed := false
		for _, c := range conns {
			if c.ClientID == clientID {
				closed = d.srv.Hub().Close(c.ConnectionID) == nil
			}
		}
		if !closed {
			t.Fatalf("no connection of the page's client %q among %v", clientID, conns)
		}
		p.waitFor(t, "connecting, then open again", `shownStates.join(' ') === 'connecting open'`)
	})
	t.Run("in the browser, a refused token ends the client with CONNECT_FAILED, not a loop", func(t *testing.T) {
		var got string
		err := p.eval(t, `import('/wsnotify.js').then(({ connect }) => new Promise((resolve) => {
			const codes = [];
			const c = connect({ url: 'ws://' + location.host, token: 'wsn_not_a_key', minDelay: 5, maxDelay: 20, maxFailures: 3 });
			c.on('error', (e) => codes.push(e.code));
			c.on('state', (s) => { if (s === 'closed') resolve(codes.join(' ')); });
		}))`, &got)
		if err != nil || got != "CONNECT_FAILED" {
			t.Fatalf("the client ended with %q (%v), want CONNECT_FAILED", got, err)
		}
	})
	t.Run("after the server stops, the page shows it is connecting", func(t *testing.T) {
		if err := d.stop(); err != nil {
			t.Fatal(err)
		}
		p.waitFor(t, "connecting", q("#state")+` === 'connecting'`)
	})
}
