package core_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime/debug"
	"testing"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// FuzzConnFrames feeds a connected Conn, with producers, consumers and one
// request of every type in flight, an arbitrary byte stream as frames read
// from the broker: the stream is cut into arbitrary pieces, decoded by a
// frame.Reader, and the frames handed to HandleFrame interleaved with API
// calls and timer ticks. The Conn must never panic, and the simulator's
// oracle checks every step (see simulation_test.go): each request completes
// at most once and only as its answer, a timeout, or a loss; pushes reach
// the registered handler they name; nothing outlives its deadline.
//
// The first byte seeds the cutting and the interleaving; the rest is the
// stream.
func FuzzConnFrames(f *testing.F) {
	f.Add([]byte{0})
	f.Add(append([]byte{1}, mustEncode(success(1))...))
	f.Add(append([]byte{2}, mustEncode(producerSuccess(3, "p", false))...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		if msg := fuzzConnFrames(data[0], data[1:]); msg != "" {
			t.Fatal(msg)
		}
	})
}

func fuzzConnFrames(seed byte, stream []byte) (failure string) {
	s := newSim(0, 0, false)
	s.rng = rand.New(rand.NewPCG(uint64(seed), uint64(len(stream))))
	defer func() {
		if r := recover(); r != nil {
			if f, ok := r.(simFailure); ok {
				failure = f.msg
			} else {
				failure = fmt.Sprintf("panic: %v\n%s", r, debug.Stack())
			}
		}
	}()
	s.connectForFuzz()
	gen := s.gen
	rd := frame.NewReader(&piecesReader{b: stream, rng: s.rng}, 0)
	for s.state != core.StateClosed {
		f, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			// The driver's reader gives up on the stream, and reports
			// the connection broken.
			current := gen == s.gen
			s.begin(stepConnFailed)
			s.c.ConnFailed(s.now, gen, err)
			s.collect()
			if current && s.state != core.StateDisconnected && s.state != core.StateClosing {
				s.failf("ConnFailed(%v): state %v", err, s.state)
			}
			if !errors.Is(err, frame.ErrMalformed) && !errors.Is(err, frame.ErrFrameTooLarge) && err != io.ErrUnexpectedEOF {
				s.failf("frame.Reader: unexpected error %v", err)
			}
			break
		}
		s.handleFrame(gen, f)
		// Interleave the API and the timer.
		switch s.rng.IntN(8) {
		case 0:
			s.apiRequest()
		case 1:
			if len(s.reqs) > 0 {
				s.apiCancel()
			}
		case 2:
			s.advance()
		case 3:
			if i := s.currentAuth(); i >= 0 {
				s.resolveAuth(i)
			}
		case 4:
			if len(s.producers)+len(s.consumers) > 0 && s.rng.IntN(4) == 0 {
				s.apiRemove()
			}
		}
	}
	// Then the timer alone: whatever is pending times out or was lost.
	for range 100 {
		if len(s.reqs) == 0 || s.state == core.StateClosed {
			break
		}
		nd := s.c.NextDeadline()
		if nd.IsZero() {
			break
		}
		s.tick(nd)
	}
	for id, w := range s.reqs {
		if !w.deadline.IsZero() {
			s.failf("request %d (%v) still pending after its deadline passed", id, w.typ)
		}
	}
	return ""
}

// connectForFuzz takes the Conn to connected, registers producers 1 and 2
// and consumers 1 and 2, and sends one request of each type: their ids are
// 1 to len(requestKinds), in requestKinds' order.
func (s *sim) connectForFuzz() {
	s.begin(stepOther)
	s.c.Start(s.now)
	s.collect()
	l := s.curLink()
	s.resolveDial(l)
	if i := s.currentAuth(); i >= 0 {
		s.resolveAuth(i)
	}
	s.brokerSend(l, connected("Pulsar-Server-fuzz", 0))
	l.connected = true
	s.deliver(l, l.undelivered())
	if s.state != core.StateConnected {
		s.failf("fuzz setup: state %v", s.state)
	}
	for id := uint64(1); id <= 2; id++ {
		for _, producer := range []bool{true, false} {
			h := &simHandler{s: s, producer: producer, id: id, toldEpoch: -1}
			var err error
			if producer {
				err = s.c.AddProducer(id, h)
				s.producers = append(s.producers, h)
			} else {
				err = s.c.AddConsumer(id, h)
				s.consumers = append(s.consumers, h)
			}
			if err != nil {
				s.failf("fuzz setup: %v", err)
			}
		}
	}
	for _, t := range requestKinds {
		w := &simWaiter{s: s, typ: t}
		s.begin(stepOther)
		id, err := s.c.Request(s.now, buildRequest(t), w)
		if err != nil {
			s.failf("fuzz setup: %v", err)
		}
		s.track(w, id)
		s.collect()
	}
}

// piecesReader returns b in pieces of random length, as a network does.
type piecesReader struct {
	b   []byte
	rng *rand.Rand
}

func (r *piecesReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(r.b), 1+r.rng.IntN(64))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

// TestFuzzConnFramesCorpus replays the committed corpus with extra
// interleavings: each input with several cutting seeds.
func TestFuzzConnFramesCorpus(t *testing.T) {
	inputs := [][]byte{
		mustEncode(success(1)),
		append(mustEncode(producerSuccess(3, "p", false)), mustEncode(producerSuccess(3, "p", true))...),
		append(mustEncode(sendReceipt(1, 1)), mustEncode(sendReceipt(7, 2))...),
		append(mustEncode(ping()), mustEncode(authChallenge("token", "x"))...),
		mustEncode(errorAnswer(2, pulsarpb.ServerError_TopicNotFound, "no")),
		{0, 0, 0, 3, 0, 0, 0}, // total size under the minimum
		{0xff, 0xff, 0xff, 0xff},
	}
	for i, in := range inputs {
		for seed := range byte(4) {
			if msg := fuzzConnFrames(seed, in); msg != "" {
				t.Errorf("input %d seed %d: %s", i, seed, msg)
			}
		}
	}
}
