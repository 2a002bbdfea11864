package app

import (
	"math"
	"runtime/debug"
)

// gcPercent is the garbage collector's goal (GOGC) in the functions. Their
// live heap is a few MB, so at Go's default of 100 a fan-out, which
// allocates some 25 KB per post in the SDK, collects every few hundred
// posts; at 400, BenchmarkFanOut's CPU per post is 18% lower and 10,000
// posts go out 12% sooner (GOGC 100 and 400 alternated, 8 runs each).
const gcPercent = 400

// memoryLimitShare is the part of the function's memory the heap may take
// before the collector works harder whatever gcPercent says, so that the
// larger heap goal never runs a function out of memory.
const memoryLimitShare = 0.75

// tuneGC sets gcPercent, unless GOGC chose another goal, and a memory limit
// of memoryLimitShare of memoryMB (when known), unless GOMEMLIMIT set one.
// The runtime has read both variables by now: what it set tells.
func tuneGC(memoryMB int) {
	if was := debug.SetGCPercent(gcPercent); was != 100 {
		debug.SetGCPercent(was) // GOGC's
	}
	if memoryMB > 0 && debug.SetMemoryLimit(-1) == math.MaxInt64 {
		debug.SetMemoryLimit(int64(float64(memoryMB<<20) * memoryLimitShare))
	}
}
