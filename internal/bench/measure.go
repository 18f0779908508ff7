package bench

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Budget bounds a measured loop: a fixed count of operations (Count > 0),
// or as many as fit until a deadline.
type Budget struct {
	Count int
	Until time.Time
}

// Count is a budget of n operations.
func Count(n int) Budget { return Budget{Count: n} }

// For is a budget of as many operations as fit in d from now.
func For(d time.Duration) Budget { return Budget{Until: time.Now().Add(d)} }

// checkEvery is how many operations pass between two reads of the clock
// in a timed loop.
const checkEvery = 64

// Done reports whether the loop that has done i operations must stop.
func (b Budget) Done(i int) bool {
	if b.Count > 0 {
		return i >= b.Count
	}
	return i%checkEvery == 0 && !time.Now().Before(b.Until)
}

// shared hands out a budget's operations to concurrent loops.
type shared struct {
	b    Budget
	next atomic.Int64
	over atomic.Bool
}

// take reports whether the caller may do one more operation.
func (s *shared) take() bool {
	if s.over.Load() {
		return false
	}
	i := int(s.next.Add(1)) - 1
	if s.b.Done(i) {
		s.over.Store(true)
		return false
	}
	return true
}

// Histogram records latencies in log-linear buckets: for each power of
// two, histSub buckets, so a quantile is within 1/(2·histSub) (3%) of
// the true value. Recording costs no allocation and no lock; a Histogram
// belongs to one goroutine, and Merge combines them.
type Histogram struct {
	counts [64 * histSub]uint64
	n      uint64
}

const (
	histSubBits = 4
	histSub     = 1 << histSubBits
)

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucket(v)]++
	h.n++
}

func bucket(v uint64) int {
	if v < histSub {
		return int(v)
	}
	e := bits.Len64(v) - 1 - histSubBits // shift keeping histSubBits+1 bits
	return (e+1)*histSub + int(v>>e) - histSub
}

// lower returns the smallest value of bucket i, and upper the smallest of
// the next one.
func lower(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	e := i/histSub - 1
	return uint64(histSub+i%histSub) << e
}

// Merge adds o's records to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// Count returns the number of records.
func (h *Histogram) Count() uint64 { return h.n }

// Quantile returns the q-quantile (0 < q <= 1), the middle of its bucket.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := lower(i), lower(i+1)
			return time.Duration(lo + (hi-lo)/2)
		}
	}
	return 0
}

// Throughput is what a throughput loop measured.
type Throughput struct {
	Ops     int           // operations (requests, frames, messages) done
	Bytes   int64         // bytes carried, when the figure is in bytes
	Elapsed time.Duration // from the first operation to the last one's completion
	Latency *Histogram    // per-operation latency, for request/response
}

// PerSecond returns operations per second.
func (t Throughput) PerSecond() float64 {
	if t.Elapsed <= 0 {
		return 0
	}
	return float64(t.Ops) / t.Elapsed.Seconds()
}

// MBPerSecond returns megabytes (10^6) per second.
func (t Throughput) MBPerSecond() float64 {
	if t.Elapsed <= 0 {
		return 0
	}
	return float64(t.Bytes) / 1e6 / t.Elapsed.Seconds()
}
