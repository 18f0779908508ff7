package bench

import "sync/atomic"

// window bounds the operations in flight of a library loop the way the
// raw Pipelined loop bounds its own: the loop counts what it started, the
// goroutine that completes operations counts what ended, and a wake goes
// through a channel only while the loop waits on a full window. A token
// channel (a send per start, a receive per end) cost the library's loops
// about 300 instructions an operation in callgrind, channel locks
// included, that the raw loops do not pay.
type window struct {
	size    int64
	ended   atomic.Int64
	waiting atomic.Bool
	wake    chan struct{}
	failed  atomic.Pointer[error]
}

func newWindow(size int) *window {
	return &window{size: int64(size), wake: make(chan struct{}, 1)}
}

// wait returns once fewer than size of the started operations have not
// ended, or with the first failure. Called by the one goroutine that
// starts operations.
func (w *window) wait(started int) error { return w.until(int64(started), w.size) }

// drain returns once every started operation has ended, or with the first
// failure.
func (w *window) drain(started int) error { return w.until(int64(started), 1) }

// until returns once fewer than limit of the started operations have not
// ended, or with the first failure.
func (w *window) until(started, limit int64) error {
	for {
		if e := w.failed.Load(); e != nil {
			return *e
		}
		if started-w.ended.Load() < limit {
			return nil
		}
		// Say so, then look again: an end counted before the flag was
		// set is seen here, one counted after sees the flag and wakes
		// us. A wake left over from an earlier wait only makes this
		// loop look again.
		w.waiting.Store(true)
		if started-w.ended.Load() < limit || w.failed.Load() != nil {
			w.waiting.Store(false)
			continue
		}
		<-w.wake
	}
}

// end counts an operation that ended.
func (w *window) end() {
	w.ended.Add(1)
	w.signal()
}

// fail records the first failure and wakes the waiting loop.
func (w *window) fail(err error) {
	w.failed.CompareAndSwap(nil, &err)
	w.waiting.Store(true) // wake it whether it waits yet or not
	w.signal()
}

func (w *window) signal() {
	if w.waiting.Load() && w.waiting.CompareAndSwap(true, false) {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}
