package memory

import (
	"bytes"
	"sync"
	"time"
)

// BufferSize is how many bytes one direction of a connection holds before a
// Write blocks for the reader to catch up: enough that a writer never waits
// for a Pulsar frame of the default maximum size (5 MiB + 10 KiB) to be
// read, yet bounded so that a test which stops reading sees backpressure,
// as it would on TCP.
const BufferSize = 8 << 20

// pipe is one direction of a connection: the writer endpoint appends, the
// reader endpoint consumes.
type pipe struct {
	mu  sync.Mutex
	buf bytes.Buffer

	// written and read count bytes since the pipe was made; delayed holds
	// the runs of bytes, in order, that are not yet due for delivery.
	written, read int64
	delayed       []delayedRun

	readerClosed bool // the reader endpoint closed: writes fail, bytes are discarded
	writerClosed bool // the writer endpoint closed: the reader sees io.EOF once drained
	reset        bool // the network dropped the connection
	finLost      bool // the writer closed on a half-open network: the reader never sees io.EOF

	readWait  chan struct{} // closed when there is something new for a reader
	writeWait chan struct{} // closed when there is something new for a writer
}

// delayedRun is a run of bytes [start, end) that may be read from at on,
// written while the network had a latency.
type delayedRun struct {
	start, end int64
	at         time.Time
}

// readable reports how many bytes a reader may take now, and, if latency
// holds back bytes already buffered, when the next of them becomes due.
// Called with p.mu held.
func (p *pipe) readable() (n int, due time.Time) {
	if len(p.delayed) == 0 {
		return p.buf.Len(), time.Time{}
	}
	now := time.Now()
	for len(p.delayed) > 0 {
		r := p.delayed[0]
		if r.end <= p.read || !r.at.After(now) {
			p.delayed = p.delayed[1:]
			continue
		}
		// Bytes before this run are due; the run itself, and everything
		// after it, waits: a delivery never overtakes an earlier one.
		return int(r.start - p.read), r.at
	}
	p.delayed = nil
	return p.buf.Len(), time.Time{}
}

// push appends b, to be delivered at at (the zero time: at once).
// Called with p.mu held.
func (p *pipe) push(b []byte, at time.Time) {
	start := p.written
	p.buf.Write(b)
	p.written += int64(len(b))
	if at.IsZero() {
		return
	}
	if k := len(p.delayed) - 1; k >= 0 && p.delayed[k].end == start && p.delayed[k].at.Equal(at) {
		p.delayed[k].end = p.written
		return
	}
	p.delayed = append(p.delayed, delayedRun{start: start, end: p.written, at: at})
}

// wakeReaders releases every blocked reader to look again.
// Called with p.mu held.
func (p *pipe) wakeReaders() {
	if p.readWait != nil {
		close(p.readWait)
		p.readWait = nil
	}
}

// wakeWriters releases every blocked writer to look again.
// Called with p.mu held.
func (p *pipe) wakeWriters() {
	if p.writeWait != nil {
		close(p.writeWait)
		p.writeWait = nil
	}
}

// readerChan returns the channel a reader blocks on. Called with p.mu held.
func (p *pipe) readerChan() <-chan struct{} {
	if p.readWait == nil {
		p.readWait = make(chan struct{})
	}
	return p.readWait
}

// writerChan returns the channel a writer blocks on. Called with p.mu held.
func (p *pipe) writerChan() <-chan struct{} {
	if p.writeWait == nil {
		p.writeWait = make(chan struct{})
	}
	return p.writeWait
}

// discard drops buffered bytes and frees their memory. Called with p.mu held.
func (p *pipe) discard() {
	p.buf = bytes.Buffer{}
	p.delayed = nil
	p.read = p.written
}
