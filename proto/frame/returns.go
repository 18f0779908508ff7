package frame

import "sync"

// returns is where the SEND_RECEIPT and MESSAGE frames a Reader decoded,
// and its PARTITIONED_METADATA_RESPONSE answers released by another
// goroutine than its reader (Broker.RequestAsyncLent's), come back when
// released (Frame.Release), from whatever goroutine
// releases them, for that Reader's next ones: one uncontended lock per
// release and one per batch of takes, where a sync.Pool's Get and Put
// cost 6-8% of a receipt's or a delivery's instructions. It is apart from
// the Reader so that a frame kept unreleased holds this small struct, not
// the Reader's read buffer.
type returns struct {
	mu       sync.Mutex
	receipts []*hotSendReceipt
	messages []*hotMessage
	pms      []*hotPartitionedMetadata
	bodies   int // bytes of the buffers messages keep
}

// Bounds of what a returns keeps; the rest goes to the shared pools,
// which the garbage collector empties. maxReturned covers the receipts
// and messages a busy connection's batch brings; maxReturnedBodies bounds
// the frame buffers the kept messages hold.
const (
	maxReturned       = 256
	maxReturnedBodies = 1 << 20
)

// putReceipt takes back a cleared receipt.
func (r *returns) putReceipt(h *hotSendReceipt) { putKept(r, &r.receipts, h, &receiptFrames) }

// putPM takes back a cleared PARTITIONED_METADATA_RESPONSE answer.
func (r *returns) putPM(h *hotPartitionedMetadata) { putKept(r, &r.pms, h, &pmFrames) }

// putKept appends h to kept, one of r's lists, unless it is full: then h
// goes to pool.
func putKept[T any](r *returns, kept *[]*T, h *T, pool *sync.Pool) {
	r.mu.Lock()
	if len(*kept) < maxReturned {
		*kept = append(*kept, h)
		h = nil
	}
	r.mu.Unlock()
	if h != nil {
		pool.Put(h)
	}
}

// putMessage takes back a cleared message and the buffer it keeps.
func (r *returns) putMessage(h *hotMessage) {
	r.mu.Lock()
	if n := cap(h.body); len(r.messages) < maxReturned && r.bodies+n <= maxReturnedBodies {
		r.messages = append(r.messages, h)
		r.bodies += n
		h = nil
	}
	r.mu.Unlock()
	if h != nil {
		messageFrames.Put(h)
	}
}

// takeReceipt returns a receipt for fr's next SEND_RECEIPT: one of fr's
// own, else one of those returned (all of which fr then takes as its
// own), else one from the shared pool. Called only by fr's reader.
func (fr *Reader) takeReceipt() *hotSendReceipt {
	if fr == nil {
		return receiptFrames.Get().(*hotSendReceipt)
	}
	h := takeKept(fr.ret, &fr.rc, &fr.ret.receipts, nil)
	if h == nil {
		h = receiptFrames.Get().(*hotSendReceipt)
	}
	h.home = fr.ret
	return h
}

// takePM is takeReceipt for a PARTITIONED_METADATA_RESPONSE when fr has
// none of its own (those Recycle kept, which parsePartitionedMetadata
// takes itself, inline).
func (fr *Reader) takePM() *hotPartitionedMetadata {
	if fr == nil {
		return pmFrames.Get().(*hotPartitionedMetadata)
	}
	h := takeKept(fr.ret, &fr.pm, &fr.ret.pms, nil)
	if h == nil {
		h = pmFrames.Get().(*hotPartitionedMetadata)
	}
	h.home = fr.ret
	return h
}

// takeMessage is takeReceipt for a MESSAGE.
func (fr *Reader) takeMessage() *hotMessage {
	h := takeKept(fr.ret, &fr.msg, &fr.ret.messages, &fr.ret.bodies)
	if h == nil {
		h = messageFrames.Get().(*hotMessage)
	}
	h.home = fr.ret
	return h
}

// takeKept pops the last of own, which, if empty, first takes every one
// of shared (the returned, in r, whose byte count bodies then drops to
// 0); nil if there is none.
func takeKept[T any](r *returns, own, shared *[]*T, bodies *int) *T {
	if len(*own) == 0 {
		r.mu.Lock()
		*own, *shared = *shared, *own
		if bodies != nil {
			*bodies = 0
		}
		r.mu.Unlock()
	}
	n := len(*own)
	if n == 0 {
		return nil
	}
	h := (*own)[n-1]
	(*own)[n-1] = nil
	*own = (*own)[:n-1]
	return h
}

// trimReturns keeps one answer, one receipt and one message of fr's own
// and of those returned, once traffic is light (Fill); the rest go to the
// shared pools.
func (fr *Reader) trimReturns() {
	fr.pm = trimTo1(fr.pm, &pmFrames)
	fr.rc = trimTo1(fr.rc, &receiptFrames)
	fr.msg = trimTo1(fr.msg, &messageFrames)
	r := fr.ret
	r.mu.Lock()
	r.receipts = trimTo1(r.receipts, &receiptFrames)
	r.messages = trimTo1(r.messages, &messageFrames)
	r.pms = trimTo1(r.pms, &pmFrames)
	r.bodies = 0
	for _, h := range r.messages {
		r.bodies += cap(h.body)
	}
	r.mu.Unlock()
}

// trimTo1 puts every element of s but the first in pool.
func trimTo1[T any](s []*T, pool *sync.Pool) []*T {
	if len(s) <= 1 {
		return s
	}
	for i, h := range s[1:] {
		pool.Put(h)
		s[i+1] = nil
	}
	return append([]*T(nil), s[0]) // not the long array
}
