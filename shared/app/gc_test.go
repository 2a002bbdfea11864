package app

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestTheFunctionsCollectGarbageLessOftenWithinTheirMemory(t *testing.T) {
	restore := func(percent int, limit int64) func() {
		percent, limit = debug.SetGCPercent(percent), debug.SetMemoryLimit(limit)
		return func() { debug.SetGCPercent(percent); debug.SetMemoryLimit(limit) }
	}
	t.Run("with Go's defaults: GOGC 400 and three quarters of the function's memory", func(t *testing.T) {
		defer restore(100, math.MaxInt64)()
		tuneGC(1769)
		if got := debug.SetGCPercent(100); got != gcPercent {
			t.Errorf("GC percent %d, want %d", got, gcPercent)
		}
		if got, want := debug.SetMemoryLimit(-1), int64(1769<<20)*3/4; got != want {
			t.Errorf("memory limit %d, want %d", got, want)
		}
	})
	t.Run("what GOGC and GOMEMLIMIT set wins", func(t *testing.T) {
		defer restore(50, 64<<20)()
		tuneGC(1769)
		if got := debug.SetGCPercent(50); got != 50 {
			t.Errorf("GC percent %d, want GOGC's 50", got)
		}
		if got := debug.SetMemoryLimit(-1); got != 64<<20 {
			t.Errorf("memory limit %d, want GOMEMLIMIT's 64 MiB", got)
		}
	})
	t.Run("outside Lambda, no memory limit", func(t *testing.T) {
		defer restore(100, math.MaxInt64)()
		tuneGC(0)
		if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
			t.Errorf("memory limit %d, want none", got)
		}
	})
}
