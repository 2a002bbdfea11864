package app

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// flushCount is a Flusher that counts its calls and fails with err.
type flushCount struct {
	n   int
	err error
}

func (f *flushCount) Flush() error { f.n++; return f.err }

type handlerFunc func(context.Context, []byte) ([]byte, error)

func (h handlerFunc) Invoke(ctx context.Context, p []byte) ([]byte, error) { return h(ctx, p) }

func TestFlushAfterWritesTheMetricsOfEveryInvocationWhateverItsOutcome(t *testing.T) {
	failed := errors.New("handler failed")
	logs := &bytes.Buffer{}
	f := &flushCount{}
	h := FlushAfter(handlerFunc(func(_ context.Context, p []byte) ([]byte, error) {
		if string(p) == "fail" {
			return nil, failed
		}
		return []byte("ok"), nil
	}), f, slog.New(slog.NewTextHandler(logs, nil)))

	if out, err := h.Invoke(context.Background(), []byte("x")); string(out) != "ok" || err != nil || f.n != 1 {
		t.Fatalf("Invoke = %q, %v; %d flushes, want ok and 1", out, err, f.n)
	}
	if _, err := h.Invoke(context.Background(), []byte("fail")); !errors.Is(err, failed) || f.n != 2 {
		t.Fatalf("a failed invocation: %v, %d flushes; want its error and a flush", err, f.n)
	}
	f.err = errors.New("stdout closed")
	if out, err := h.Invoke(context.Background(), []byte("x")); string(out) != "ok" || err != nil {
		t.Fatalf("a failed flush changed the answer: %q, %v", out, err)
	}
	if !strings.Contains(logs.String(), "stdout closed") {
		t.Fatalf("a failed flush is not logged: %s", logs)
	}
}
