package notify

import "sync"

// workers runs a fan-out's pushes on at most limit goroutines that each
// take push after push, where errgroup starts a goroutine per push. A push
// through the Management API SDK runs some fifty frames deep: a goroutine
// per push grows a new stack to that depth every time (copying it on each
// doubling), and the garbage collector scans every one, which cost a tenth
// of a large fan-out's CPU. Like errgroup with SetLimit, Go blocks while
// every worker is busy, and Wait returns once every push has returned.
//
// With a limit of 0, Go runs each push itself: for a pusher that only
// queues (the hub), handing each push to another goroutine costs more than
// the push.
type workers struct {
	work    chan func()
	limit   int
	started int
	wg      sync.WaitGroup
}

func newWorkers(limit int) *workers {
	return &workers{work: make(chan func()), limit: limit}
}

// Go runs f on a worker, starting one if fewer than limit run. It must not
// be called after Wait.
func (w *workers) Go(f func()) {
	if w.limit == 0 {
		f()
		return
	}
	if w.started < w.limit {
		w.started++
		w.wg.Go(func() {
			for f := range w.work {
				f() // a push reports its outcome itself
			}
		})
	}
	w.work <- f
}

// Wait waits for every push to return and stops the workers.
func (w *workers) Wait() {
	close(w.work)
	w.wg.Wait()
}
