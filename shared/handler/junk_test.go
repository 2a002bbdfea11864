package handler

import (
	"testing"
	"time"
)

// TestBadMessagesAreLoggedAFewTimesAMinuteWithACountOfTheRest drives the
// per-connection limiter through two minutes and the close.
func TestBadMessagesAreLoggedAFewTimesAMinuteWithACountOfTheRest(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	b := newBadMessages(func() time.Time { return now })
	logged := func(n int, conn string) (lines, suppressedReported int) {
		for range n {
			v := b.note(conn)
			if v.log {
				lines++
				suppressedReported += v.suppressed
			}
		}
		return
	}
	if lines, _ := logged(20, "a"); lines != BadMessageLogsPerMinute {
		t.Fatalf("%d lines in the first minute, want %d", lines, BadMessageLogsPerMinute)
	}
	if lines, _ := logged(5, "b"); lines != BadMessageLogsPerMinute {
		t.Fatalf("another connection has an allowance of its own: %d lines", lines)
	}
	now = now.Add(time.Minute)
	lines, reported := logged(1, "a")
	if lines != 1 || reported != 20-BadMessageLogsPerMinute {
		t.Fatalf("the next minute's first line: %d lines reporting %d not logged, want 1 reporting %d", lines, reported, 20-BadMessageLogsPerMinute)
	}
	var v badVerdict
	for v.total < MaxBadMessages-1 {
		v = b.note("a")
		if v.close {
			t.Fatalf("closed at %d bad messages, before %d", v.total, MaxBadMessages)
		}
	}
	if v = b.note("a"); !v.close || !v.log || v.total != MaxBadMessages {
		t.Fatalf("the %dth bad message: %+v, want it logged and the connection closed", MaxBadMessages, v)
	}
	if v = b.note("a"); v.log || v.close {
		t.Fatalf("after the close: %+v, want nothing logged and no second close", v)
	}
}

func TestTheBadMessageCountsStayBounded(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	b := newBadMessages(func() time.Time { return now })
	for i := range 3 * maxTrackedConns {
		if i%maxTrackedConns == 0 {
			now = now.Add(time.Minute)
		}
		b.note(string(rune('a'+i%26)) + time.Duration(i).String())
	}
	if len(b.conns) > maxTrackedConns {
		t.Fatalf("%d connections tracked, bound %d", len(b.conns), maxTrackedConns)
	}
}
