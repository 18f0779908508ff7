package core_test

// The deterministic simulator of the core: a driver, a network and a broker,
// all in virtual time and all drawn from one seeded PCG source, around a
// real core.Conn, with an oracle that checks the Conn's every step. The
// tests that run it are in sim_test.go and fuzz_conn_test.go.
//
// The simulator is the driver: after every input it takes Output (which the
// simulated broker decodes and acts on) and carries out Effects in order
// (dials, closes, auth asks, completions, deliveries, state changes). The
// network is one link per generation: the broker appends encoded frames to
// the link's byte stream, the network delivers it in arbitrary pieces, and a
// frame.Reader reading only the delivered bytes decodes the frames handed to
// HandleFrame. Time moves only when the simulator advances it, to
// NextDeadline, past it (a late timer) or by a smaller step, then Ticks.
//
// The model (the sim's own fields) predicts, from the inputs alone, what the
// Conn must do. Checked at every step:
//
//   - each request's Waiter completes at most once, never after Cancel or
//     when Request refused it, and only as: its own answer (in the step that
//     fed it; error iff the answer carries one), a timeout (at or after its
//     deadline, in Tick), ErrDisconnected (in a step that lost the
//     connection) or ErrClosed (in FinishClose, or with the broker's
//     refusal of the credentials); Pending() equals the
//     model's count, so none is dropped silently;
//   - no pending request is past its deadline, and NextDeadline is never
//     after one, nor after the keepalive, connect and reconnect deadlines;
//     every request has one, a PRODUCER answered producer_ready=false too
//     (the operation timeout bounds its wait for exclusive access);
//   - pushes reach the handler registered for the id they name, of the
//     right kind (each SEND_RECEIPT exactly once), never a removed one;
//     PushDisconnected once per connection, to every handler, on a loss
//     from connected; PushEnded (ErrClosed) once, in FinishClose or at a
//     refusal, and nothing after it;
//   - the broker's refusal of the credentials (ERROR AuthenticationError
//     in the handshake, or answering no request on a live connection)
//     ends the Conn for good: closed, with everything failed, every
//     handler told, and no reconnection; any other refusal is retried;
//   - every state transition is legal, State() agrees with the effects,
//     bytes are written only on an established connection, and each frame
//     does exactly what the protocol says (frames of an old generation or
//     a lost connection nothing at all);
//   - a connected Conn has received something within 2 keepalive intervals
//     and sent a PING within one; connecting ends by the connect timeout;
//     each backoff delay is within [base/2, base] for its attempt, so within
//     [BackoffMin/2, BackoffMax], and resets after CONNECTED.
//
// After the random steps the faults stop (settle): the Conn must reach
// connected within a bound, stay connected while the broker answers its
// PINGs, resolve everything in flight, stop gracefully, and stay inert.

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// ---------------------------------------------------------------------------
// Faults and swarm testing
// ---------------------------------------------------------------------------

// fault is one kind of misbehaviour the simulator can inject. Each seed
// switches on its own subset (swarm testing: a run with few kinds of fault
// goes deeper into each than a run with all of them).
type fault uint8

const (
	fDisconnect    fault = iota // the connection breaks (ConnFailed), or the driver Drops it
	fDialFail                   // dials fail
	fSlow                       // dials and the Authenticator are slow, past the connect timeout
	fStale                      // late events of old generations: ConnUp, ConnFailed, frames, AuthResult
	fRefuse                     // the broker refuses the handshake with ERROR, or the credentials of a live connection
	fAuthFail                   // the Authenticator fails
	fAuthChallenge              // the broker sends AUTH_CHALLENGE, in the handshake and later
	fSilence                    // the broker goes silent for a while: a wedged link
	fDrop                       // the broker never answers some requests
	fReorder                    // answers come out of order
	fDuplicate                  // answers come twice
	fUnknownID                  // answers for request ids never sent
	fServerError                // answers are errors
	fBadChecksum                // MESSAGE frames with a bad CRC32C
	fBrokerClose                // CLOSE_PRODUCER, CLOSE_CONSUMER, TOPIC_MIGRATED
	fPartialReads               // reads split frames arbitrarily
	fLateTimer                  // the driver's timer fires late
	fProtocol                   // commands out of place, answers of the wrong type
	fClose                      // BeginClose and FinishClose mid-run
	numFaults
)

var faultNames = [numFaults]string{
	"disconnect", "dial-fail", "slow", "stale", "refuse", "auth-fail", "auth-challenge",
	"silence", "drop", "reorder", "duplicate", "unknown-id", "server-error", "bad-checksum",
	"broker-close", "partial-reads", "late-timer", "protocol", "close",
}

type faultSet uint32

const allFaults = faultSet(1<<numFaults - 1)

func (fs faultSet) has(f fault) bool { return fs&(1<<f) != 0 }

func (fs faultSet) String() string {
	var names []string
	for f := range numFaults {
		if fs.has(f) {
			names = append(names, faultNames[f])
		}
	}
	return "[" + strings.Join(names, " ") + "]"
}

// faultsForSeed derives a seed's fault kinds from the seed alone: one seed
// in eight runs every fault, the others each kind with probability 1/2.
func faultsForSeed(seed uint64) faultSet {
	if seed%8 == 0 {
		return allFaults
	}
	r := rand.New(rand.NewPCG(seed, 0x5377_6172_6d)) // "Swarm"
	var fs faultSet
	for f := range numFaults {
		if r.IntN(2) == 0 {
			fs |= 1 << f
		}
	}
	return fs
}

// ---------------------------------------------------------------------------
// Counters
// ---------------------------------------------------------------------------

type outcome uint8

const (
	outAnswer outcome = iota
	outServerError
	outTimeout
	outDisconnected
	outClosed
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"answer", "server-error", "timeout", "disconnected", "closed"}

// simStats counts what the simulations did, for the summary.
type simStats struct {
	seeds, steps   int
	outcomes       [numOutcomes]int
	rejected       int // requests refused at once (not connected, not a request)
	cancelled      int
	faults         [numFaults]int // faults injected, by kind
	pushes         int
	connects       int // handshakes completed
	settleMax      time.Duration
	keepaliveDrops int
	rejectDrops    int // connections dropped for too many TooManyRequests
	refusals       int // Conns ended by the broker's refusal of the credentials
	limited        int // requests refused at the request limit
}

func (a *simStats) add(b *simStats) {
	a.seeds += b.seeds
	a.steps += b.steps
	for i := range a.outcomes {
		a.outcomes[i] += b.outcomes[i]
	}
	a.rejected += b.rejected
	a.cancelled += b.cancelled
	for i := range a.faults {
		a.faults[i] += b.faults[i]
	}
	a.pushes += b.pushes
	a.connects += b.connects
	a.settleMax = max(a.settleMax, b.settleMax)
	a.keepaliveDrops += b.keepaliveDrops
	a.rejectDrops += b.rejectDrops
	a.refusals += b.refusals
	a.limited += b.limited
}

// ---------------------------------------------------------------------------
// Waiters and handlers the simulator hands the Conn
// ---------------------------------------------------------------------------

type waitStatus uint8

const (
	waitNew       waitStatus = iota // handed to the Conn; not yet known to be taken
	waitPending                     // a request in flight
	waitDone                        // completed
	waitCancelled                   // Cancel forgot it
	waitRejected                    // the Conn refused the request: it must never complete
)

type simWaiter struct {
	s        *sim
	id       uint64
	typ      pulsarpb.BaseCommand_Type
	deadline time.Time // zero: no operation timeout (a PRODUCER not ready yet)
	status   waitStatus
	outcome  outcome
	// For CLOSE_PRODUCER / CLOSE_CONSUMER sent by Remove* or BeginClose:
	// the producer or consumer closed.
	closeOf       uint64
	closeProducer bool
	closeAny      bool // BeginClose's: a producer's or a consumer's
}

func (w *simWaiter) Done(result *pulsarpb.BaseCommand, err error) { w.s.onComplete(w, result, err) }

type simHandler struct {
	s        *sim
	producer bool
	id       uint64
	removed  bool // unregistered: no push may reach it any more
	// toldEpoch is the connection epoch of the last PushDisconnected
	// (ErrDisconnected) it got; toldClosed, whether it got PushEnded.
	toldEpoch  int
	toldClosed bool
}

func (h *simHandler) HandlePush(p core.Push) { h.s.onPush(h, p) }

// ---------------------------------------------------------------------------
// Links: one per dial, holding the broker's side of the connection
// ---------------------------------------------------------------------------

// link is the connection of one generation: the network between the Conn
// and the broker, and the broker's state for it.
type link struct {
	gen    uint64
	dialed bool // a dial outcome (ConnUp or ConnFailed) is still to be reported
	up     bool // established and not closed
	closed bool

	// The broker-to-client byte stream, the end offset of each frame in it,
	// how much of it the network has delivered, and how many frames the
	// reader has decoded. The reader reads only delivered bytes.
	stream    []byte
	frameEnds []int
	delivered int
	read      int // bytes handed to the reader
	decoded   int // frames decoded
	rd        *frame.Reader
	src       *streamSource

	// Broker state.
	gotConnect  bool
	connected   bool // CONNECTED sent
	challenged  bool
	awaitAuth   bool // AUTH_CHALLENGE sent, AUTH_RESPONSE not yet received
	pingOwed    int
	silentUntil time.Time
	outstanding []brokerReq // requests received, not yet answered
	answered    []brokerReq // recently answered, for duplicates
}

type brokerReq struct {
	id       uint64
	typ      pulsarpb.BaseCommand_Type
	notReady bool // PRODUCER answered once with producer_ready=false
}

func (l *link) undelivered() int { return len(l.stream) - l.delivered }

func (l *link) owes(now time.Time) bool {
	if !l.up || now.Before(l.silentUntil) {
		return false
	}
	return (l.gotConnect && !l.connected && !l.awaitAuth) || l.pingOwed > 0 || len(l.outstanding) > 0
}

// streamSource is the network as the reader sees it: the delivered bytes
// of one link, in whatever pieces they arrived.
type streamSource struct{ l *link }

func (s *streamSource) Read(p []byte) (int, error) {
	l := s.l
	n := copy(p, l.stream[l.read:l.delivered])
	l.read += n
	return n, nil
}

// ---------------------------------------------------------------------------
// The simulator
// ---------------------------------------------------------------------------

type stepKind uint8

const (
	stepOther stepKind = iota
	stepFrame
	stepTick
	stepConnFailed
	stepFinishClose
)

// frameExpect is what the oracle expects a frame to do, derived from the
// frame and the model alone.
type frameExpect struct {
	ignored    bool
	stateAfter core.State
	answerID   uint64
	complete   bool // request answerID completes in this step
	wantErr    bool
	notReady   bool // PRODUCER_SUCCESS with producer_ready=false: answerID stays pending, its deadline unchanged
	push       core.PushKind
	pushTo     *simHandler
	payloadOK  bool
	pong       bool
	auth       bool
	challenge  []byte
	// refused: the frame is the broker's refusal of the credentials,
	// which fails the failAll requests pending and ends the Conn.
	refused bool
	failAll int
}

// stepRecord is what one input to the Conn produced, as the oracle saw it.
type stepRecord struct {
	kind        stepKind
	cmd         *pulsarpb.BaseCommand // stepFrame: the frame's command
	exp         frameExpect
	from        core.State // state before the step
	completions int
	disconnects int // completions with ErrDisconnected
	pushes      int // pushes other than PushDisconnected
	lostPushes  int
	lost        bool // the state went to disconnected
	cause       error
	// rejectDrop: the TooManyRequests answers of this step passed the
	// rejection limit while connected, so the connection must be dropped.
	rejectDrop bool
	wrote      bool
	pings      int
	pongs      int
	auths      []core.Effect
	authResps  int
	closes     []core.Effect
	effects    int // effects other than logs
}

// authAsk is an EffectAuth the simulated Authenticator has yet to answer.
type authAsk struct {
	gen     uint64
	initial bool
}

type simFailure struct{ msg string }

type sim struct {
	// rejections models the Conn's TooManyRequests window; stoppedConnected
	// whether the stop began connected (its end is then EventClosed).
	rejections       []time.Time
	stoppedConnected bool

	seed   uint64
	faults faultSet
	rng    *rand.Rand
	pol    *rand.Rand // the policies' draws (see newSim)
	cfg    core.Config
	c      *core.Conn
	now    time.Time
	start  time.Time
	steps  int
	stats  simStats

	tracing bool
	trace   []string

	out  []byte
	effs []core.Effect
	cur  stepRecord

	// The model of the Conn.
	state       core.State
	gen         uint64
	links       map[uint64]*link
	linkOrder   []*link
	auths       []authAsk
	authBusy    bool                  // an auth ask of the current generation is in flight
	hasNext     bool                  // a challenge arrived meanwhile: authNext, the latest
	authNext    []byte                //
	reqs        map[uint64]*simWaiter // pending, by request id
	reqOrder    []uint64              // request ids in the order sent (some no longer pending)
	nextReqID   uint64
	newWaiters  []*simWaiter // CLOSE_* waiters handed to the Conn in this step
	closers     []*simWaiter // BeginClose's waiters
	producers   []*simHandler
	consumers   []*simHandler
	nextProdID  uint64
	nextConsID  uint64
	nextSeq     uint64
	epoch       int // incremented at each CONNECTED
	attempt     int // backoff attempts since the last CONNECTED
	lastRecv    time.Time
	pingBase    time.Time
	dialAt      time.Time
	reconnectAt time.Time
	connectedAt time.Time
	began       bool // BeginClose called
	// Irregular events the Conn must count in Stats.
	badChecksums, unknownRequests uint64
	maxMsg                        int // the max message size CONNECTED announced
	spare                         *frame.Reader

	// Settling: the faults have stopped.
	calm        bool
	calmStart   time.Time
	convergedAt time.Time
}

// simEpoch is the virtual time every simulation starts at.
var simEpoch = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

func newSim(seed uint64, faults faultSet, tracing bool) *sim {
	rng := rand.New(rand.NewPCG(seed, 0x5349_4d))    // "SIM"
	jitter := rand.New(rand.NewPCG(seed, 0x4a49_54)) // "JIT": the Conn's backoff jitter
	pick := func(ds ...time.Duration) time.Duration { return ds[rng.IntN(len(ds))] }
	cfg := core.Config{
		Address:           "broker.sim:6650",
		ClientVersion:     "pulsarconn-sim/1.0",
		ConnectTimeout:    pick(10*time.Second, 2*time.Second),
		OperationTimeout:  pick(30*time.Second, 3*time.Second, 45*time.Second),
		KeepAliveInterval: pick(30*time.Second, 5*time.Second, time.Second),
		BackoffMin:        pick(100*time.Millisecond, time.Second),
		BackoffMax:        pick(60*time.Second, 5*time.Second),
		Rand:              jitter.Float64,
	}
	if rng.IntN(2) == 0 {
		cfg.AuthMethod = "token"
	}
	// The policies the core took over from the driver draw from a stream
	// of their own, so that every other draw, and so each recorded
	// regression seed's run, stays as it was.
	pol := rand.New(rand.NewPCG(seed, 0x504f_4c)) // "POL"
	if pol.IntN(3) == 0 {
		cfg.MaxPending = 1 + pol.IntN(6)
	}
	if pol.IntN(2) == 0 {
		cfg.RejectLimit = 1 + pol.IntN(3)
		cfg.RejectWindow = []time.Duration{time.Second, 30 * time.Second}[pol.IntN(2)]
	}
	s := &sim{
		seed: seed, faults: faults, rng: rng, pol: pol, cfg: cfg, c: core.New(cfg),
		now: simEpoch, start: simEpoch, tracing: tracing,
		links: make(map[uint64]*link), reqs: make(map[uint64]*simWaiter),
		nextReqID: 1, nextProdID: 1, nextConsID: 1, nextSeq: 1,
	}
	return s
}

func (s *sim) failf(format string, args ...any) {
	panic(simFailure{fmt.Sprintf("invariant violated: "+format, args...)})
}

func (s *sim) tracef(format string, args ...any) {
	if !s.tracing {
		return
	}
	line := fmt.Sprintf("step %4d %10s %-12s ", s.steps, s.now.Sub(s.start), s.state) + fmt.Sprintf(format, args...)
	s.trace = append(s.trace, line)
}

func (s *sim) has(f fault) bool { return !s.calm && s.faults.has(f) }

// chance reports true with probability n/d.
func (s *sim) chance(n, d int) bool { return s.rng.IntN(d) < n }

// inject reports whether fault f happens now, with probability n/d, and
// counts it.
func (s *sim) inject(f fault, n, d int) bool {
	if !s.has(f) || !s.chance(n, d) {
		return false
	}
	s.stats.faults[f]++
	return true
}

// cur returns the link of the current generation, or nil.
func (s *sim) curLink() *link { return s.links[s.gen] }

// ---------------------------------------------------------------------------
// Carrying out a step: what the driver does after every input
// ---------------------------------------------------------------------------

// begin starts the record of one input.
func (s *sim) begin(kind stepKind) {
	s.steps++
	s.cur = stepRecord{kind: kind, from: s.state}
}

// collect carries out what the last input produced, in the documented
// order — write Output, carry out Effects, arm NextDeadline — checking each
// against the model, then checks the invariants that hold after every step.
func (s *sim) collect() {
	s.out = s.c.Output(s.out[:0])
	s.effs = s.c.Effects(s.effs[:0])
	if len(s.out) > 0 {
		s.cur.wrote = true
		l := s.curLink()
		if l == nil || !l.up {
			s.failf("%d bytes written with no connection up (gen %d)", len(s.out), s.gen)
		}
		s.brokerRead(l, s.out)
	}
	if len(s.newWaiters) > 0 {
		s.failf("CLOSE request of %d waiters not written", len(s.newWaiters))
	}
	for i := range s.effs {
		s.effect(&s.effs[i])
	}
	clear(s.effs)
	if s.cur.wrote {
		if l := s.curLink(); l == nil || !l.up {
			s.failf("bytes written in the step that closed the connection")
		}
	}
	s.afterStep()
}

func (s *sim) effect(e *core.Effect) {
	if e.Kind != core.EffectLog {
		s.cur.effects++
	}
	switch e.Kind {
	case core.EffectDial:
		if e.Gen != s.gen+1 || e.Gen != s.c.Gen() {
			s.failf("dial of gen %d, want %d", e.Gen, s.gen+1)
		}
		if e.Address != s.cfg.Address || !e.Deadline.Equal(s.now.Add(s.cfg.ConnectTimeout)) {
			s.failf("dial %q deadline %v, want %q %v", e.Address, e.Deadline, s.cfg.Address, s.now.Add(s.cfg.ConnectTimeout))
		}
		s.gen = e.Gen
		l := &link{gen: e.Gen, dialed: true}
		s.links[e.Gen] = l
		s.linkOrder = append(s.linkOrder, l)
		s.dialAt = s.now
		if s.tracing {
			s.tracef("  effect dial gen=%d", e.Gen)
		}
	case core.EffectClose:
		l := s.links[e.Gen]
		if l == nil {
			s.failf("close of gen %d, never dialled", e.Gen)
		}
		if e.Err == nil {
			s.failf("close of gen %d without a reason", e.Gen)
		}
		l.up = false
		l.closed = true
		s.cur.closes = append(s.cur.closes, *e)
		if s.tracing {
			s.tracef("  effect close gen=%d: %v", e.Gen, e.Err)
		}
	case core.EffectAuth:
		if e.Gen != s.gen {
			s.failf("auth asked for gen %d, current %d", e.Gen, s.gen)
		}
		if s.authBusy {
			s.failf("auth asked for gen %d with one in flight", e.Gen)
		}
		s.authBusy = true
		s.auths = append(s.auths, authAsk{gen: e.Gen, initial: e.Initial})
		s.cur.auths = append(s.cur.auths, *e)
		if s.tracing {
			s.tracef("  effect auth gen=%d initial=%v", e.Gen, e.Initial)
		}
	case core.EffectComplete:
		w, ok := e.Waiter.(*simWaiter)
		if !ok {
			s.failf("completion of a waiter the simulator never gave: %T", e.Waiter)
		}
		w.Done(e.Result, e.Err)
		if e.Result != nil { // an answer, not a failure of the Conn's
			s.modelRejection(e.Err)
		}
	case core.EffectDeliver:
		h, ok := e.Handler.(*simHandler)
		if !ok {
			s.failf("push to a handler the simulator never registered: %T", e.Handler)
		}
		h.HandlePush(e.Push)
	case core.EffectState:
		s.checkEvent(e)
		s.transition(e.State)
	case core.EffectLog:
	default:
		s.failf("unknown effect kind %d", e.Kind)
	}
}

// modelRejection counts a TooManyRequests answer in the model's window, as
// the Conn must (Config.RejectLimit), and notes when it must drop.
func (s *sim) modelRejection(err error) {
	if s.cfg.RejectLimit <= 0 || !errors.Is(err, core.ErrTooManyRequests) {
		return
	}
	keep := s.rejections[:0]
	for _, t := range s.rejections {
		if s.now.Sub(t) < s.cfg.RejectWindow {
			keep = append(keep, t)
		}
	}
	s.rejections = append(keep, s.now)
	if len(s.rejections) > s.cfg.RejectLimit {
		s.rejections = s.rejections[:0]
		if s.state == core.StateConnected {
			s.cur.rejectDrop = true
			s.stats.rejectDrops++
		}
	}
}

// checkEvent checks the connection event a state change carries against
// the model: an Observer's ConnectionOpened, ConnectionClosed and
// HandshakeFailed are derived from it.
func (s *sim) checkEvent(e *core.Effect) {
	from, to := s.state, e.State
	want := core.EventNone
	switch {
	case to == core.StateConnected:
		want = core.EventOpened
		if e.Reconnect != (s.stats.connects > 0) {
			s.failf("opened with reconnect=%v after %d connections", e.Reconnect, s.stats.connects)
		}
	case from == core.StateConnected && to == core.StateDisconnected:
		want = core.EventClosed
	case from == core.StateConnected && to == core.StateClosing:
		s.stoppedConnected = true
	case to == core.StateClosed && s.cur.exp.refused:
		want = core.EventHandshakeFailed
		if from == core.StateConnected {
			want = core.EventClosed
		}
		if !errors.Is(e.Err, core.ErrAuthenticationError) {
			s.failf("closed at a refusal with cause %v, want ErrAuthenticationError", e.Err)
		}
	case to == core.StateClosed && s.stoppedConnected:
		want = core.EventClosed
		if !errors.Is(e.Err, core.ErrClosed) {
			s.failf("closed at the stop with cause %v, want ErrClosed", e.Err)
		}
	case (from == core.StateConnecting || from == core.StateHandshaking) && to == core.StateDisconnected:
		want = core.EventHandshakeFailed
	}
	if e.From != from || e.Event != want {
		s.failf("state change %v → %v (said from %v) carries event %d, want %d", from, to, e.From, e.Event, want)
	}
	if (want != core.EventNone && want != core.EventOpened) != (e.Err != nil) {
		s.failf("state change %v → %v, event %d, with cause %v", from, to, e.Event, e.Err)
	}
	if to == core.StateDisconnected {
		s.cur.cause = e.Err
	}
}

// legal lists the state transitions the lifecycle allows.
var legal = map[[2]core.State]bool{
	{core.StateDisconnected, core.StateConnecting}:  true,
	{core.StateConnecting, core.StateHandshaking}:   true,
	{core.StateHandshaking, core.StateConnected}:    true,
	{core.StateConnecting, core.StateDisconnected}:  true,
	{core.StateHandshaking, core.StateDisconnected}: true,
	{core.StateConnected, core.StateDisconnected}:   true,
	{core.StateDisconnected, core.StateClosing}:     true,
	{core.StateConnecting, core.StateClosing}:       true,
	{core.StateHandshaking, core.StateClosing}:      true,
	{core.StateConnected, core.StateClosing}:        true,
	{core.StateClosing, core.StateClosed}:           true,
	// The broker's refusal of the credentials.
	{core.StateHandshaking, core.StateClosed}: true,
	{core.StateConnected, core.StateClosed}:   true,
}

func (s *sim) transition(to core.State) {
	from := s.state
	if !legal[[2]core.State{from, to}] {
		s.failf("illegal transition %v → %v", from, to)
	}
	if s.tracing {
		s.tracef("  state %v → %v", from, to)
	}
	s.state = to
	switch to {
	case core.StateConnected:
		s.epoch++
		s.attempt = 0
		s.pingBase = s.now
		s.connectedAt = s.now
		s.stats.connects++
		if l := s.curLink(); l == nil || !l.up {
			s.failf("connected without a connection up")
		}
	case core.StateDisconnected:
		s.cur.lost = true
		if s.calm && !s.convergedAt.IsZero() && !s.cur.rejectDrop {
			s.failf("connection lost at %v although the broker behaves and it converged at %v", s.rel(s.now), s.rel(s.convergedAt))
		}
	}
}

func (s *sim) rel(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return "+" + t.Sub(s.start).String()
}

func (s *sim) onComplete(w *simWaiter, result *pulsarpb.BaseCommand, err error) {
	switch w.status {
	case waitDone:
		s.failf("request %d (%v) completed twice (again with result=%v err=%v)", w.id, w.typ, result.GetType(), err)
	case waitCancelled:
		s.failf("request %d (%v) completed after Cancel forgot it (err=%v)", w.id, w.typ, err)
	case waitRejected, waitNew:
		s.failf("waiter of a %v request the Conn refused was completed (err=%v)", w.typ, err)
	}
	if s.reqs[w.id] != w {
		s.failf("request %d completed but the model does not have it pending", w.id)
	}
	var o outcome
	switch {
	case result != nil:
		x := &s.cur.exp
		if s.cur.kind != stepFrame || !x.complete || x.answerID != w.id || result != s.cur.cmd {
			s.failf("request %d (%v) completed with an answer (%v) that is not its own", w.id, w.typ, result.GetType())
		}
		if (err != nil) != x.wantErr {
			s.failf("request %d answered by %v: err=%v, want error %v", w.id, result.GetType(), err, x.wantErr)
		}
		o = outAnswer
		if err != nil {
			var se *core.ServerError
			if !errors.As(err, &se) {
				s.failf("request %d: answer error %v is not a *ServerError", w.id, err)
			}
			o = outServerError
		}
	case errors.Is(err, core.ErrDisconnected):
		o = outDisconnected
		s.cur.disconnects++
	case errors.Is(err, core.ErrClosed):
		if s.cur.kind != stepFinishClose && !s.cur.exp.refused {
			s.failf("request %d completed with ErrClosed outside FinishClose and a refusal", w.id)
		}
		if s.cur.exp.refused && !errors.Is(err, core.ErrAuthenticationError) {
			s.failf("request %d failed at a refusal with %v", w.id, err)
		}
		o = outClosed
	case errors.Is(err, core.ErrRequestTimeout):
		if s.now.Before(w.deadline) {
			s.failf("request %d (%v) timed out at %v, deadline %v", w.id, w.typ, s.rel(s.now), s.rel(w.deadline))
		}
		if s.cur.kind != stepTick {
			s.failf("request %d timed out outside Tick", w.id)
		}
		o = outTimeout
	default:
		s.failf("request %d (%v) completed with result=nil err=%v", w.id, w.typ, err)
	}
	if s.tracing {
		s.tracef("  complete request %d (%v): %s %v", w.id, w.typ, outcomeNames[o], err)
	}
	w.status = waitDone
	w.outcome = o
	delete(s.reqs, w.id)
	s.cur.completions++
	s.stats.outcomes[o]++
}

var producerPushes = map[core.PushKind]bool{core.PushReceipt: true, core.PushSendError: true,
	core.PushClosed: true, core.PushTopicMigrated: true, core.PushDisconnected: true, core.PushEnded: true}
var consumerPushes = map[core.PushKind]bool{core.PushMessage: true, core.PushActiveConsumerChange: true,
	core.PushReachedEndOfTopic: true, core.PushClosed: true, core.PushTopicMigrated: true, core.PushDisconnected: true, core.PushEnded: true}

func (s *sim) onPush(h *simHandler, p core.Push) {
	who := "consumer"
	if h.producer {
		who = "producer"
	}
	if s.tracing {
		s.tracef("  push %v to %s %d", p.Kind, who, h.id)
	}
	if h.removed {
		s.failf("push %v delivered to %s %d after it was removed", p.Kind, who, h.id)
	}
	if h.toldClosed {
		s.failf("push %v delivered to %s %d after its PushEnded", p.Kind, who, h.id)
	}
	if p.ID != h.id {
		s.failf("push %v for id %d delivered to %s %d", p.Kind, p.ID, who, h.id)
	}
	if (h.producer && !producerPushes[p.Kind]) || (!h.producer && !consumerPushes[p.Kind]) {
		s.failf("push %v delivered to a %s", p.Kind, who)
	}
	if p.Kind == core.PushDisconnected || p.Kind == core.PushEnded {
		s.cur.lostPushes++
		switch {
		case errors.Is(p.Err, core.ErrClosed) != (p.Kind == core.PushEnded):
			s.failf("%v with err %v", p.Kind, p.Err)
		case errors.Is(p.Err, core.ErrClosed):
			if s.cur.kind != stepFinishClose && !s.cur.exp.refused || h.toldClosed {
				s.failf("%s %d told of the final stop outside FinishClose and a refusal, or twice", who, h.id)
			}
			h.toldClosed = true
		case errors.Is(p.Err, core.ErrDisconnected):
			if s.epoch == 0 || h.toldEpoch == s.epoch {
				s.failf("%s %d told twice of the loss of connection epoch %d", who, h.id, s.epoch)
			}
			h.toldEpoch = s.epoch
		default:
			s.failf("PushDisconnected with err %v", p.Err)
		}
		return
	}
	x := &s.cur.exp
	if s.cur.kind != stepFrame || x.push != p.Kind || x.pushTo != h || p.Command != s.cur.cmd {
		s.failf("push %v to %s %d, but the frame (%v) calls for %v to %v", p.Kind, who, h.id, s.cur.cmd.GetType(), x.push, x.pushTo)
	}
	if p.Kind == core.PushMessage && (p.Payload == nil || p.Payload.ChecksumOK != x.payloadOK) {
		s.failf("MESSAGE pushed without its payload or with the wrong checksum verdict")
	}
	if p.Kind == core.PushSendError && p.Err == nil {
		s.failf("SEND_ERROR pushed without an error")
	}
	s.cur.pushes++
	s.stats.pushes++
}

// afterStep checks the invariants that hold after every step.
func (s *sim) afterStep() {
	if got := s.c.State(); got != s.state {
		s.failf("State() is %v, the effects said %v", got, s.state)
	}
	// Every request the model has pending is pending in the Conn, and no
	// other: each completion matched a distinct pending request.
	if got := s.c.Pending(); got != len(s.reqs) {
		s.failf("Pending() = %d, the model has %d pending (a request was dropped without completion, or kept after it)", got, len(s.reqs))
	}
	nd := s.c.NextDeadline()
	if !nd.IsZero() && !nd.After(s.now) {
		s.failf("NextDeadline %v is not after now %v: a passed deadline was not handled", s.rel(nd), s.rel(s.now))
	}
	switch s.state {
	case core.StateDisconnected:
		if s.cur.lost {
			s.checkBackoff(nd)
		}
		if !nd.Equal(s.reconnectAt) {
			s.failf("disconnected: NextDeadline %v, want the reconnect at %v", s.rel(nd), s.rel(s.reconnectAt))
		}
	case core.StateConnecting, core.StateHandshaking:
		by := s.dialAt.Add(s.cfg.ConnectTimeout)
		if !s.now.Before(by) {
			s.failf("still %v at %v, past the connect deadline %v", s.state, s.rel(s.now), s.rel(by))
		}
		if nd.IsZero() || nd.After(by) {
			s.failf("%v: NextDeadline %v is after the connect deadline %v", s.state, s.rel(nd), s.rel(by))
		}
	case core.StateConnected:
		dead := s.lastRecv.Add(2 * s.cfg.KeepAliveInterval)
		if !s.now.Before(dead) {
			s.failf("keepalive: nothing received since %v, and still connected at %v (limit %v)", s.rel(s.lastRecv), s.rel(s.now), s.rel(dead))
		}
		ping := s.pingBase.Add(s.cfg.KeepAliveInterval)
		if !s.now.Before(ping) {
			s.failf("keepalive: no PING since %v at %v", s.rel(s.pingBase), s.rel(s.now))
		}
		if nd.IsZero() || nd.After(dead) || nd.After(ping) {
			s.failf("connected: NextDeadline %v is after the keepalive deadlines (ping %v, dead %v)", s.rel(nd), s.rel(ping), s.rel(dead))
		}
	}
	if len(s.reqs) > 0 {
		if s.state != core.StateConnected && s.state != core.StateClosing {
			s.failf("%d requests pending in state %v", len(s.reqs), s.state)
		}
		for id, w := range s.reqs {
			if w.deadline.IsZero() {
				s.failf("request %d (%v) has no deadline", id, w.typ)
			}
			if !s.now.Before(w.deadline) {
				s.failf("request %d (%v) still pending at %v, past its deadline %v", id, w.typ, s.rel(s.now), s.rel(w.deadline))
			}
			if nd.IsZero() || nd.After(w.deadline) {
				s.failf("NextDeadline %v is after request %d's deadline %v", s.rel(nd), id, s.rel(w.deadline))
			}
		}
	}
	// Disconnected completions and pushes only in a step that lost the
	// connection; a loss from connected tells every registered handler.
	lostInClosing := s.cur.kind == stepConnFailed && s.cur.from == core.StateClosing
	if s.cur.disconnects > 0 && !s.cur.lost && !lostInClosing {
		s.failf("%d requests failed as disconnected in a step that lost nothing", s.cur.disconnects)
	}
	if s.cur.lostPushes > 0 && !s.cur.lost && !lostInClosing && s.cur.kind != stepFinishClose && !s.cur.exp.refused {
		s.failf("%d handlers told of a loss in a step that lost nothing", s.cur.lostPushes)
	}
	if s.cur.rejectDrop != (s.cur.lost && errors.Is(s.cur.cause, core.ErrTooManyRequests)) {
		s.failf("rejection limit passed: %v; lost: %v (%v)", s.cur.rejectDrop, s.cur.lost, s.cur.cause)
	}
	if s.cur.lost && s.cur.from == core.StateConnected {
		for _, h := range s.producers {
			if h.toldEpoch != s.epoch {
				s.failf("producer %d not told of the loss of the connection", h.id)
			}
		}
		for _, h := range s.consumers {
			if h.toldEpoch != s.epoch {
				s.failf("consumer %d not told of the loss of the connection", h.id)
			}
		}
	}
	if s.steps%8 == 0 && s.cur.kind != stepFinishClose && !s.cur.exp.refused {
		s.checkRegistrations()
	}
}

func (s *sim) checkBackoff(nd time.Time) {
	d := nd.Sub(s.now)
	base := s.cfg.BackoffMin
	for i := 0; i < s.attempt && base < s.cfg.BackoffMax; i++ {
		if base > s.cfg.BackoffMax/2 {
			base = s.cfg.BackoffMax
			break
		}
		base *= 2
	}
	base = min(base, s.cfg.BackoffMax)
	if d < base/2 || d > base || d < s.cfg.BackoffMin/2 || d > s.cfg.BackoffMax {
		s.failf("backoff delay %v after %d failures, want within [%v, %v] and [Min/2, Max] = [%v, %v]",
			d, s.attempt, base/2, base, s.cfg.BackoffMin/2, s.cfg.BackoffMax)
	}
	s.attempt++
	s.reconnectAt = nd
}

func (s *sim) checkRegistrations() {
	ids := func(hs []*simHandler) []uint64 {
		var r []uint64
		for _, h := range hs {
			r = append(r, h.id)
		}
		slices.Sort(r)
		return r
	}
	if got, want := s.c.Producers(), ids(s.producers); !slices.Equal(got, want) {
		s.failf("Producers() = %v, model %v", got, want)
	}
	if got, want := s.c.Consumers(), ids(s.consumers); !slices.Equal(got, want) {
		s.failf("Consumers() = %v, model %v", got, want)
	}
}

// ---------------------------------------------------------------------------
// The broker reading what the Conn wrote
// ---------------------------------------------------------------------------

// splitFrames calls f for each frame in b, which must hold whole frames.
func splitFrames(b []byte, f func(*frame.Frame)) error {
	for len(b) > 0 {
		n, ok := frame.TotalSize(b)
		if !ok || uint64(n) > uint64(len(b)-4) {
			return fmt.Errorf("truncated frame in %d bytes", len(b))
		}
		fr, err := frame.Parse(b[4 : 4+n])
		if err != nil {
			return err
		}
		f(fr)
		b = b[4+n:]
	}
	return nil
}

func (s *sim) brokerRead(l *link, b []byte) {
	err := splitFrames(b, func(f *frame.Frame) {
		if f.Payload != nil {
			s.failf("the Conn wrote a payload frame")
		}
		cmd := f.Command
		t := cmd.GetType()
		if s.tracing {
			s.tracef("  wrote %v", t)
		}
		switch t {
		case pulsarpb.BaseCommand_CONNECT:
			if l.gotConnect {
				s.failf("CONNECT written twice on gen %d", l.gen)
			}
			if (s.cfg.AuthMethod != "") != (cmd.GetConnect().GetAuthMethodName() != "") {
				s.failf("CONNECT auth method %q, configured %q", cmd.GetConnect().GetAuthMethodName(), s.cfg.AuthMethod)
			}
			l.gotConnect = true
		case pulsarpb.BaseCommand_AUTH_RESPONSE:
			l.awaitAuth = false
			s.cur.authResps++
		case pulsarpb.BaseCommand_PING:
			s.cur.pings++
			s.pingBase = s.now
			l.pingOwed++
		case pulsarpb.BaseCommand_PONG:
			s.cur.pongs++
		case pulsarpb.BaseCommand_FLOW:
		default:
			id, ok := frame.RequestID(cmd)
			if !ok {
				if t == pulsarpb.BaseCommand_ACK {
					return // an ACK sent with Send
				}
				s.failf("the Conn wrote %v", t)
			}
			if s.reqs[id] == nil && (t == pulsarpb.BaseCommand_CLOSE_PRODUCER || t == pulsarpb.BaseCommand_CLOSE_CONSUMER) {
				s.assignClose(cmd, id)
			}
			w := s.reqs[id]
			if w == nil || w.typ != t {
				s.failf("the Conn wrote %v with request id %d, which the model does not have pending", t, id)
			}
			if !l.connected {
				s.failf("request %v written before CONNECTED", t)
			}
			l.outstanding = append(l.outstanding, brokerReq{id: id, typ: t})
		}
	})
	if err != nil {
		s.failf("the Conn wrote an undecodable frame: %v", err)
	}
}

// assignClose gives a CLOSE_PRODUCER or CLOSE_CONSUMER written in this
// step the request id the Conn chose, by the producer or consumer it names.
func (s *sim) assignClose(cmd *pulsarpb.BaseCommand, id uint64) {
	producer := cmd.GetType() == pulsarpb.BaseCommand_CLOSE_PRODUCER
	of := cmd.GetCloseConsumer().GetConsumerId()
	if producer {
		of = cmd.GetCloseProducer().GetProducerId()
	}
	for i, w := range s.newWaiters {
		if w.closeOf == of && (w.closeAny || w.closeProducer == producer) {
			if w.closeAny {
				w.typ, w.closeProducer = cmd.GetType(), producer
			}
			s.newWaiters = slices.Delete(s.newWaiters, i, i+1)
			s.track(w, id)
			return
		}
	}
	s.failf("%v for %d written, not asked for", cmd.GetType(), of)
}

// track makes w the pending request id.
func (s *sim) track(w *simWaiter, id uint64) {
	if id != s.nextReqID {
		s.failf("request id %d, want %d (ids are assigned in sequence)", id, s.nextReqID)
	}
	s.nextReqID++
	w.id = id
	w.status = waitPending
	w.deadline = s.now.Add(s.cfg.OperationTimeout)
	s.reqs[id] = w
	s.reqOrder = append(s.reqOrder, id)
}

// ---------------------------------------------------------------------------
// Frames to the Conn
// ---------------------------------------------------------------------------

// expectFrame derives from the frame and the model what the Conn must do
// with a frame read on gen.
func (s *sim) expectFrame(gen uint64, f *frame.Frame) frameExpect {
	l := s.links[gen]
	st := s.state
	x := frameExpect{stateAfter: st}
	if gen != s.gen || l == nil || !l.up || (st != core.StateHandshaking && st != core.StateConnected && st != core.StateClosing) {
		x.ignored = true
		return x
	}
	cmd := f.Command
	t := cmd.GetType()
	if st == core.StateHandshaking {
		switch t {
		case pulsarpb.BaseCommand_CONNECTED:
			x.stateAfter = core.StateConnected
		case pulsarpb.BaseCommand_AUTH_CHALLENGE:
			s.expectChallenge(&x, cmd)
		case pulsarpb.BaseCommand_PING:
			x.pong = true
		case pulsarpb.BaseCommand_PONG:
		case pulsarpb.BaseCommand_ERROR:
			s.expectRefusal(&x, cmd)
		default:
			x.stateAfter = core.StateDisconnected
		}
		return x
	}
	toProducer := func(id uint64, k core.PushKind) {
		if h := findHandler(s.producers, id); h != nil {
			x.push, x.pushTo = k, h
		}
	}
	toConsumer := func(id uint64, k core.PushKind) {
		if h := findHandler(s.consumers, id); h != nil {
			x.push, x.pushTo = k, h
		}
	}
	switch t {
	case pulsarpb.BaseCommand_PING:
		x.pong = true
	case pulsarpb.BaseCommand_AUTH_CHALLENGE:
		s.expectChallenge(&x, cmd)
	case pulsarpb.BaseCommand_SEND_RECEIPT:
		toProducer(cmd.GetSendReceipt().GetProducerId(), core.PushReceipt)
	case pulsarpb.BaseCommand_SEND_ERROR:
		toProducer(cmd.GetSendError().GetProducerId(), core.PushSendError)
	case pulsarpb.BaseCommand_CLOSE_PRODUCER:
		toProducer(cmd.GetCloseProducer().GetProducerId(), core.PushClosed)
	case pulsarpb.BaseCommand_MESSAGE:
		if f.Payload != nil {
			toConsumer(cmd.GetMessage().GetConsumerId(), core.PushMessage)
			x.payloadOK = f.Payload.ChecksumOK
		}
	case pulsarpb.BaseCommand_CLOSE_CONSUMER:
		toConsumer(cmd.GetCloseConsumer().GetConsumerId(), core.PushClosed)
	case pulsarpb.BaseCommand_ACTIVE_CONSUMER_CHANGE:
		toConsumer(cmd.GetActiveConsumerChange().GetConsumerId(), core.PushActiveConsumerChange)
	case pulsarpb.BaseCommand_REACHED_END_OF_TOPIC:
		toConsumer(cmd.GetReachedEndOfTopic().GetConsumerId(), core.PushReachedEndOfTopic)
	case pulsarpb.BaseCommand_TOPIC_MIGRATED:
		tm := cmd.GetTopicMigrated()
		if tm.GetResourceType() == pulsarpb.CommandTopicMigrated_Producer {
			toProducer(tm.GetResourceId(), core.PushTopicMigrated)
		} else {
			toConsumer(tm.GetResourceId(), core.PushTopicMigrated)
		}
	default:
		if !isAnswer(t) {
			break
		}
		id, ok := frame.RequestID(cmd)
		w := s.reqs[id]
		if ok && w == nil && st == core.StateConnected && cmd.GetError().GetError() == pulsarpb.ServerError_AuthenticationError {
			s.expectRefusal(&x, cmd)
		}
		if !ok || w == nil {
			break
		}
		x.answerID = id
		// Only a PRODUCER waits for exclusive access; any other request
		// is completed by whatever answers it.
		if t == pulsarpb.BaseCommand_PRODUCER_SUCCESS && !cmd.GetProducerSuccess().GetProducerReady() && w.typ == pulsarpb.BaseCommand_PRODUCER {
			x.notReady = true
			break
		}
		x.complete = true
		x.wantErr = answerIsError(cmd)
	}
	return x
}

func isAnswer(t pulsarpb.BaseCommand_Type) bool {
	switch t {
	case pulsarpb.BaseCommand_SUCCESS,
		pulsarpb.BaseCommand_ERROR,
		pulsarpb.BaseCommand_PRODUCER_SUCCESS,
		pulsarpb.BaseCommand_LOOKUP_RESPONSE,
		pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE,
		pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID_RESPONSE,
		pulsarpb.BaseCommand_ACK_RESPONSE,
		pulsarpb.BaseCommand_GET_TOPICS_OF_NAMESPACE_RESPONSE,
		pulsarpb.BaseCommand_GET_SCHEMA_RESPONSE,
		pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA_RESPONSE:
		return true
	}
	return false
}

func findHandler(hs []*simHandler, id uint64) *simHandler {
	for _, h := range hs {
		if h.id == id {
			return h
		}
	}
	return nil
}

// answerIsError says which answers carry an error, from the protocol.
func answerIsError(cmd *pulsarpb.BaseCommand) bool {
	switch cmd.GetType() {
	case pulsarpb.BaseCommand_ERROR:
		return true
	case pulsarpb.BaseCommand_LOOKUP_RESPONSE:
		return cmd.GetLookupTopicResponse().GetResponse() == pulsarpb.CommandLookupTopicResponse_Failed
	case pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE:
		return cmd.GetPartitionMetadataResponse().GetResponse() == pulsarpb.CommandPartitionedTopicMetadataResponse_Failed
	case pulsarpb.BaseCommand_ACK_RESPONSE:
		return cmd.GetAckResponse().Error != nil
	case pulsarpb.BaseCommand_GET_SCHEMA_RESPONSE:
		return cmd.GetGetSchemaResponse().ErrorCode != nil
	case pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA_RESPONSE:
		return cmd.GetGetOrCreateSchemaResponse().ErrorCode != nil
	}
	return false
}

// handleFrame feeds one decoded frame of gen to the Conn and checks what it
// did against expectFrame.
func (s *sim) handleFrame(gen uint64, f *frame.Frame) {
	s.begin(stepFrame)
	x := s.expectFrame(gen, f)
	s.cur.cmd = f.Command
	s.cur.exp = x
	if s.tracing {
		s.tracef("frame gen=%d %v ignored=%v", gen, f.Command.GetType(), x.ignored)
	}
	if !x.ignored {
		s.lastRecv = s.now
		if x.stateAfter != core.StateHandshaking && s.state != core.StateHandshaking {
			switch t := f.Command.GetType(); {
			case t == pulsarpb.BaseCommand_MESSAGE && f.Payload != nil && !f.Payload.ChecksumOK:
				s.badChecksums++
			case isAnswer(t) && !x.complete && !x.notReady && !x.refused:
				s.unknownRequests++
			}
		}
	}
	s.c.HandleFrame(s.now, gen, f)
	s.collect()
	c := &s.cur
	if x.ignored && (c.effects > 0 || c.wrote) {
		s.failf("a frame of gen %d (%v), which must be ignored, produced %d effects", gen, f.Command.GetType(), c.effects)
	}
	if c.rejectDrop {
		// The answer passed the rejection limit: the connection was
		// dropped, failing the rest of what was pending.
		x.stateAfter = core.StateDisconnected
		c.completions -= c.disconnects
	}
	if want := b2i(x.complete) + x.failAll; c.completions != want {
		s.failf("%v for request %d: %d completions, want %d", f.Command.GetType(), x.answerID, c.completions, want)
	}
	if x.refused {
		s.stats.refusals++
		s.ended("the refusal of the credentials")
	}
	if c.from == core.StateHandshaking && s.state == core.StateConnected {
		if n := int(f.Command.GetConnected().GetMaxMessageSize()); n > 0 {
			s.maxMsg = n
		}
	}
	if want := b2i(x.push != 0); c.pushes != want {
		s.failf("%v: %d pushes, want %d", f.Command.GetType(), c.pushes, want)
	}
	if x.pong && c.pongs != 1 {
		s.failf("PING answered with %d PONGs", c.pongs)
	}
	if x.auth != (len(c.auths) == 1) || len(c.auths) > 1 {
		s.failf("%v: %d auth effects", f.Command.GetType(), len(c.auths))
	}
	if x.auth && (c.auths[0].Initial || !bytes.Equal(c.auths[0].Challenge, x.challenge)) {
		s.failf("AUTH_CHALLENGE: auth effect initial=%v challenge=%q", c.auths[0].Initial, c.auths[0].Challenge)
	}
	if s.state != x.stateAfter {
		s.failf("%v in state %v: state %v after, want %v", f.Command.GetType(), c.from, s.state, x.stateAfter)
	}
}

// expectRefusal: an ERROR in the handshake, or one that answers no request
// on a live connection (the second only with AuthenticationError), ends
// the connection; with AuthenticationError it is the broker's refusal of
// the credentials, which ends the Conn for good.
func (s *sim) expectRefusal(x *frameExpect, cmd *pulsarpb.BaseCommand) {
	if cmd.GetError().GetError() != pulsarpb.ServerError_AuthenticationError {
		x.stateAfter = core.StateDisconnected
		return
	}
	x.stateAfter = core.StateClosed
	x.refused = true
	x.failAll = len(s.reqs)
}

// expectChallenge: an AUTH_CHALLENGE is asked for at once unless an ask is
// in flight; then it replaces the one kept for when that is answered.
func (s *sim) expectChallenge(x *frameExpect, cmd *pulsarpb.BaseCommand) {
	ch := cmd.GetAuthChallenge().GetChallenge().GetAuthData()
	if s.authBusy {
		s.hasNext, s.authNext = true, ch
		return
	}
	x.auth = true
	x.challenge = ch
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// deliver moves n more bytes of l's stream across the network, and feeds
// the Conn every frame that is now whole, decoded by a frame.Reader that
// reads the bytes in the pieces they arrived in.
func (s *sim) deliver(l *link, n int) {
	l.delivered += n
	if s.tracing {
		s.tracef("read gen=%d %d bytes (%d/%d)", l.gen, n, l.delivered, len(l.stream))
	}
	for l.decoded < len(l.frameEnds) && l.frameEnds[l.decoded] <= l.delivered {
		if l.rd == nil {
			s.giveReader(l)
		}
		f, err := l.rd.Next()
		if err != nil {
			s.failf("simulator: reader: %v", err)
		}
		l.decoded++
		if l.read > l.delivered || l.rd.Buffered() != l.read-l.frameEnds[l.decoded-1] {
			s.failf("simulator: reader read %d of %d delivered bytes, %d buffered", l.read, l.delivered, l.rd.Buffered())
		}
		s.handleFrame(l.gen, f)
	}
}

// giveReader gives l a frame.Reader: the spare one when its last owner
// holds no bytes in its buffer (reading resumes at a frame boundary), else
// a new one.
func (s *sim) giveReader(l *link) {
	for _, o := range s.linkOrder {
		if o != l && o.rd != nil && o.rd.Buffered() == 0 {
			l.rd, l.src = o.rd, o.src
			o.rd, o.src = nil, nil
			l.src.l = l
			return
		}
	}
	if r, ok := readerPool.Get().(*pooledReader); ok {
		l.rd, l.src = r.rd, r.src
		l.src.l = l
		return
	}
	l.src = &streamSource{l: l}
	l.rd = frame.NewReader(l.src, 0)
}

// A frame.Reader holds a 64 KiB buffer: the runs share those whose buffer
// is empty, which are as good as new (their limit is the default).
type pooledReader struct {
	rd  *frame.Reader
	src *streamSource
}

var readerPool sync.Pool

// releaseReaders puts the reusable readers of a finished run in the pool.
func (s *sim) releaseReaders() {
	for _, l := range s.linkOrder {
		if l.rd != nil && l.rd.Buffered() == 0 {
			l.src.l = nil
			readerPool.Put(&pooledReader{l.rd, l.src})
			l.rd, l.src = nil, nil
		}
	}
}

// ---------------------------------------------------------------------------
// The broker writing
// ---------------------------------------------------------------------------

// pingFrame and pongFrame are encoded once: the broker sends many.
var pingFrame, pongFrame = mustEncode(ping()), mustEncode(pong())

func mustEncode(cmd *pulsarpb.BaseCommand) []byte {
	b, err := frame.AppendCommand(nil, cmd)
	if err != nil {
		panic(err)
	}
	return b
}

func (s *sim) brokerSendBytes(l *link, b []byte) {
	l.stream = append(l.stream, b...)
	l.frameEnds = append(l.frameEnds, len(l.stream))
}

func (s *sim) brokerSend(l *link, cmd *pulsarpb.BaseCommand) {
	b, err := frame.AppendCommand(l.stream, cmd)
	if err != nil {
		s.failf("simulator: encode %v: %v", cmd.GetType(), err)
	}
	if s.tracing {
		s.tracef("broker gen=%d sends %v", l.gen, cmd.GetType())
	}
	l.stream = b
	l.frameEnds = append(l.frameEnds, len(b))
}

func (s *sim) brokerSendMessage(l *link, consumerID uint64, corrupt bool) {
	start := len(l.stream)
	seq := s.nextSeq
	s.nextSeq++
	b, err := frame.AppendMessage(l.stream, messageCmd(consumerID, 7, seq),
		&pulsarpb.MessageMetadata{ProducerName: proto.String("sim-0"), SequenceId: proto.Uint64(seq),
			PublishTime: proto.Uint64(1_700_000_000_000)}, []byte("payload"))
	if err != nil {
		s.failf("simulator: encode MESSAGE: %v", err)
	}
	if corrupt {
		b[len(b)-1] ^= 0xff
	}
	if s.tracing {
		s.tracef("broker gen=%d sends MESSAGE consumer=%d corrupt=%v (%d bytes)", l.gen, consumerID, corrupt, len(b)-start)
	}
	l.stream = b
	l.frameEnds = append(l.frameEnds, len(b))
}

// answer builds the broker's answer to a request.
func (s *sim) answer(r brokerReq, fail bool, ready bool) *pulsarpb.BaseCommand {
	id := r.id
	code := pulsarpb.ServerError_ServiceNotReady
	if !s.calm && s.pol.IntN(2) == 0 {
		code = pulsarpb.ServerError_TooManyRequests // see modelRejection
	}
	switch r.typ {
	case pulsarpb.BaseCommand_LOOKUP:
		if fail {
			return lookupFailed(id, code, "sim")
		}
		return lookupConnect(id, "pulsar://broker.sim:6650")
	case pulsarpb.BaseCommand_PARTITIONED_METADATA:
		if fail {
			return partitionsFailed(id, code, "sim")
		}
		return partitionsAnswer(id, 3)
	case pulsarpb.BaseCommand_PRODUCER:
		if fail {
			return errorAnswer(id, pulsarpb.ServerError_ProducerBusy, "sim")
		}
		return producerSuccess(id, "sim-producer", ready)
	case pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID:
		if fail {
			return errorAnswer(id, code, "sim")
		}
		return lastMessageIDAnswer(id, 7, 9)
	case pulsarpb.BaseCommand_GET_TOPICS_OF_NAMESPACE:
		if fail {
			return errorAnswer(id, code, "sim")
		}
		return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_GET_TOPICS_OF_NAMESPACE_RESPONSE.Enum(),
			GetTopicsOfNamespaceResponse: &pulsarpb.CommandGetTopicsOfNamespaceResponse{
				RequestId: proto.Uint64(id), Topics: []string{"persistent://public/default/t"}}}
	case pulsarpb.BaseCommand_GET_SCHEMA:
		r := &pulsarpb.CommandGetSchemaResponse{RequestId: proto.Uint64(id)}
		if fail {
			r.ErrorCode = pulsarpb.ServerError_TopicNotFound.Enum()
			r.ErrorMessage = proto.String("sim")
		}
		return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_GET_SCHEMA_RESPONSE.Enum(), GetSchemaResponse: r}
	case pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA:
		r := &pulsarpb.CommandGetOrCreateSchemaResponse{RequestId: proto.Uint64(id)}
		if fail {
			r.ErrorCode = pulsarpb.ServerError_IncompatibleSchema.Enum()
			r.ErrorMessage = proto.String("sim")
		}
		return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA_RESPONSE.Enum(), GetOrCreateSchemaResponse: r}
	case pulsarpb.BaseCommand_ACK:
		if fail {
			return ackFailed(id, 1, code, "sim")
		}
		return ackAnswer(id, 1)
	}
	// SUBSCRIBE, UNSUBSCRIBE, SEEK, CLOSE_PRODUCER, CLOSE_CONSUMER.
	if fail {
		return errorAnswer(id, code, "sim")
	}
	return success(id)
}

// requestKinds are the requests the simulated API sends, one of each type
// that carries a request id.
var requestKinds = []pulsarpb.BaseCommand_Type{
	pulsarpb.BaseCommand_LOOKUP,
	pulsarpb.BaseCommand_PARTITIONED_METADATA,
	pulsarpb.BaseCommand_PRODUCER,
	pulsarpb.BaseCommand_SUBSCRIBE,
	pulsarpb.BaseCommand_UNSUBSCRIBE,
	pulsarpb.BaseCommand_SEEK,
	pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID,
	pulsarpb.BaseCommand_GET_TOPICS_OF_NAMESPACE,
	pulsarpb.BaseCommand_GET_SCHEMA,
	pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA,
	pulsarpb.BaseCommand_ACK,
	pulsarpb.BaseCommand_CLOSE_PRODUCER,
	pulsarpb.BaseCommand_CLOSE_CONSUMER,
}

func buildRequest(t pulsarpb.BaseCommand_Type) *pulsarpb.BaseCommand {
	const topic = "persistent://public/default/sim"
	switch t {
	case pulsarpb.BaseCommand_LOOKUP:
		return lookup(topic)
	case pulsarpb.BaseCommand_PARTITIONED_METADATA:
		return partitionedMetadata(topic)
	case pulsarpb.BaseCommand_PRODUCER:
		return producerCmd(1, topic)
	case pulsarpb.BaseCommand_SUBSCRIBE:
		return subscribeCmd(1, topic, "sub")
	case pulsarpb.BaseCommand_UNSUBSCRIBE:
		return unsubscribeCmd(1)
	case pulsarpb.BaseCommand_SEEK:
		return &pulsarpb.BaseCommand{Type: t.Enum(), Seek: &pulsarpb.CommandSeek{ConsumerId: proto.Uint64(1),
			MessagePublishTime: proto.Uint64(1_700_000_000_000)}}
	case pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID:
		return getLastMessageID(1)
	case pulsarpb.BaseCommand_GET_TOPICS_OF_NAMESPACE:
		return &pulsarpb.BaseCommand{Type: t.Enum(), GetTopicsOfNamespace: &pulsarpb.CommandGetTopicsOfNamespace{
			Namespace: proto.String("public/default")}}
	case pulsarpb.BaseCommand_GET_SCHEMA:
		return &pulsarpb.BaseCommand{Type: t.Enum(), GetSchema: &pulsarpb.CommandGetSchema{Topic: proto.String(topic)}}
	case pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA:
		return &pulsarpb.BaseCommand{Type: t.Enum(), GetOrCreateSchema: &pulsarpb.CommandGetOrCreateSchema{
			Topic: proto.String(topic), Schema: &pulsarpb.Schema{Name: proto.String("s"),
				SchemaData: []byte{}, Type: pulsarpb.Schema_String.Enum()}}}
	case pulsarpb.BaseCommand_ACK:
		return ackCmd(1, 7, 1)
	case pulsarpb.BaseCommand_CLOSE_PRODUCER:
		return &pulsarpb.BaseCommand{Type: t.Enum(), CloseProducer: &pulsarpb.CommandCloseProducer{ProducerId: proto.Uint64(99)}}
	case pulsarpb.BaseCommand_CLOSE_CONSUMER:
		return &pulsarpb.BaseCommand{Type: t.Enum(), CloseConsumer: &pulsarpb.CommandCloseConsumer{ConsumerId: proto.Uint64(99)}}
	}
	return flowCmd(1, 100) // not a request
}

// ---------------------------------------------------------------------------
// The random run
// ---------------------------------------------------------------------------

var (
	errReset   = errors.New("sim: connection reset by peer")
	errDial    = errors.New("sim: connection refused")
	errDropped = errors.New("sim: dropped by the driver")
	errAuth    = errors.New("sim: authenticator failed")
)

type action uint8

const (
	aTime action = iota
	aDial
	aAuth
	aBroker
	aRead
	aRequest
	aCancel
	aSend
	aCheckPublish
	aAdd
	aRemove
	aDisconnect
	aStale
	aBeginClose
	aFinishClose
	numActions
)

// run starts the Conn, takes it through actions random steps, then stops
// the faults and checks that it settles, then stops it gracefully.
func (s *sim) run(actions int) {
	s.begin(stepOther)
	s.c.Start(s.now)
	s.collect()
	for range actions {
		if s.state == core.StateClosed {
			break
		}
		s.act()
	}
	s.settle()
	s.afterClosed()
	st := s.c.Stats()
	if st.BadChecksums != s.badChecksums || st.UnknownRequests != s.unknownRequests {
		s.failf("Stats: %d bad checksums, %d unknown requests; the model saw %d and %d",
			st.BadChecksums, st.UnknownRequests, s.badChecksums, s.unknownRequests)
	}
	if want := uint64(max(s.stats.connects-1, 0)); st.Reconnects != want {
		s.failf("Stats: %d reconnects, want %d", st.Reconnects, want)
	}
}

// afterClosed checks that a closed Conn stays inert: calls fail with
// ErrClosed, late events change nothing, no deadline is asked for.
func (s *sim) afterClosed() {
	for range 8 {
		s.cur = stepRecord{from: s.state}
		switch s.rng.IntN(6) {
		case 0:
			s.apiRequest()
		case 1:
			s.apiAdd()
		case 2:
			s.apiSend()
		case 3:
			s.tick(s.now.Add(time.Duration(1 + s.rng.Int64N(int64(time.Minute)))))
		case 4:
			s.begin(stepOther)
			s.c.Start(s.now)
			s.c.Drop(s.now, errDropped)
			s.c.ConnFailed(s.now, s.gen, errReset)
			s.c.BeginClose(s.now, nil)
			s.c.FinishClose(s.now)
			s.collect()
		case 5:
			for _, l := range s.linkOrder {
				if l.dialed {
					l.dialed = false
					s.connUp(l) // answered with EffectClose only
					break
				}
			}
		}
		if s.state != core.StateClosed || !s.c.NextDeadline().IsZero() || s.cur.effects > len(s.cur.closes) || s.cur.wrote {
			s.failf("closed Conn not inert: state %v, NextDeadline %v, %d effects", s.state, s.rel(s.c.NextDeadline()), s.cur.effects)
		}
	}
}

// workPending reports whether something that takes no time in a healthy
// network is waiting: time then moves in small steps only, so that a seed
// without slowness faults has no spurious timeouts.
func (s *sim) workPending() bool {
	l := s.curLink()
	if l == nil {
		return false
	}
	slow := s.has(fSlow)
	if l.dialed && !slow {
		return true
	}
	if !slow && s.currentAuth() >= 0 {
		return true
	}
	if l.up && l.undelivered() > 0 {
		return true
	}
	return l.owes(s.now)
}

// currentAuth returns the index of an auth ask of the current generation,
// or -1.
func (s *sim) currentAuth() int {
	for i, a := range s.auths {
		if a.gen == s.gen {
			return i
		}
	}
	return -1
}

func (s *sim) act() {
	var w [numActions]int
	l := s.curLink()
	regs := len(s.producers) + len(s.consumers)
	w[aTime] = 10
	if s.workPending() {
		w[aTime] = 3
	}
	if l != nil && l.dialed {
		w[aDial] = 20
	}
	if s.currentAuth() >= 0 {
		w[aAuth] = 20
	}
	if l != nil && l.up && !s.now.Before(l.silentUntil) {
		w[aBroker] = 25
	}
	if l != nil && l.undelivered() > 0 {
		w[aRead] = 25
	}
	w[aRequest] = 1
	if s.state == core.StateConnected {
		w[aRequest] = 8
	}
	if len(s.reqs) > 0 {
		w[aCancel] = 1
	}
	w[aSend] = 1
	w[aCheckPublish] = 1
	if regs < 6 {
		w[aAdd] = 2
	}
	if regs > 0 {
		w[aRemove] = 1
	}
	if s.faults.has(fDisconnect) && l != nil {
		w[aDisconnect] = 1
	}
	if s.faults.has(fStale) && len(s.linkOrder) > 1 {
		w[aStale] = 2
	}
	if s.faults.has(fClose) && !s.began && s.rng.IntN(8) == 0 {
		w[aBeginClose] = 1
	}
	if s.began {
		w[aFinishClose] = 2
		if s.closersDone() {
			w[aFinishClose] = 20
		}
	}
	total := 0
	for _, x := range w {
		total += x
	}
	n := s.rng.IntN(total)
	var a action
	for a = 0; n >= w[a]; a++ {
		n -= w[a]
	}
	switch a {
	case aTime:
		s.advance()
	case aDial:
		s.resolveDial(l)
	case aAuth:
		s.resolveAuth(s.currentAuth())
	case aBroker:
		s.brokerAct(l)
	case aRead:
		n := l.undelivered()
		if s.has(fPartialReads) && n > 1 {
			n = 1 + s.rng.IntN(n)
			s.stats.faults[fPartialReads]++
		}
		s.deliver(l, n)
	case aRequest:
		s.apiRequest()
	case aCancel:
		s.apiCancel()
	case aSend:
		s.apiSend()
	case aCheckPublish:
		s.apiCheckPublish()
	case aAdd:
		s.apiAdd()
	case aRemove:
		s.apiRemove()
	case aDisconnect:
		s.disconnect()
	case aStale:
		s.stale()
	case aBeginClose:
		s.stats.faults[fClose]++
		s.beginClose()
	case aFinishClose:
		s.finishClose()
	}
}

// advance moves virtual time — to NextDeadline, late past it, or a random
// smaller step — and calls Tick, as the driver's timer does.
func (s *sim) advance() {
	nd := s.c.NextDeadline()
	if l := s.curLink(); s.has(fSlow) && l != nil && (l.dialed || s.currentAuth() >= 0) {
		s.stats.faults[fSlow]++ // time passes while a dial or the Authenticator is slow
	}
	to := s.now
	switch {
	case s.workPending():
		gap := time.Duration(100 * time.Millisecond)
		if !nd.IsZero() {
			gap = min(gap, nd.Sub(s.now)-1)
		}
		if gap <= 0 {
			return
		}
		to = s.now.Add(1 + time.Duration(s.rng.Int64N(int64(gap))))
	case nd.IsZero():
		to = s.now.Add(time.Millisecond + time.Duration(s.rng.Int64N(int64(5*time.Second))))
	case s.inject(fLateTimer, 1, 3):
		to = nd.Add(time.Duration(s.rng.Int64N(int64(2 * time.Second))))
	case s.chance(7, 10):
		to = nd
	default:
		to = s.now.Add(1 + time.Duration(s.rng.Int64N(int64(nd.Sub(s.now)))))
	}
	s.tick(to)
}

// tick advances to `to` and calls Tick, checking what must happen by then.
func (s *sim) tick(to time.Time) {
	if to.Before(s.now) {
		s.failf("simulator: time going back")
	}
	s.now = to
	s.begin(stepTick)
	if s.tracing {
		s.tracef("tick")
	}
	from := s.state
	wantState := from
	wantPing := false
	switch from {
	case core.StateDisconnected:
		if !s.reconnectAt.IsZero() && !s.now.Before(s.reconnectAt) {
			wantState = core.StateConnecting
		}
	case core.StateConnecting, core.StateHandshaking:
		if !s.now.Before(s.dialAt.Add(s.cfg.ConnectTimeout)) {
			wantState = core.StateDisconnected
		}
	case core.StateConnected:
		if !s.now.Before(s.lastRecv.Add(2 * s.cfg.KeepAliveInterval)) {
			wantState = core.StateDisconnected
			s.stats.keepaliveDrops++
		} else if !s.now.Before(s.pingBase.Add(s.cfg.KeepAliveInterval)) {
			wantPing = true
		}
	}
	s.c.Tick(s.now)
	s.collect()
	if s.state != wantState {
		s.failf("Tick in %v: state %v, want %v", from, s.state, wantState)
	}
	if wantPing != (s.cur.pings == 1) || s.cur.pings > 1 {
		s.failf("Tick: %d PINGs written, want ping=%v", s.cur.pings, wantPing)
	}
}

func (s *sim) resolveDial(l *link) {
	l.dialed = false
	if s.state == core.StateConnecting && l.gen == s.gen && s.inject(fDialFail, 1, 3) {
		s.begin(stepConnFailed)
		if s.tracing {
			s.tracef("dial gen=%d fails", l.gen)
		}
		s.c.ConnFailed(s.now, l.gen, errDial)
		s.collect()
		if s.state != core.StateDisconnected {
			s.failf("failed dial: state %v", s.state)
		}
		return
	}
	s.connUp(l)
}

func (s *sim) connUp(l *link) {
	accept := l.gen == s.gen && s.state == core.StateConnecting
	l.up = true // the transport connected
	s.begin(stepOther)
	if s.tracing {
		s.tracef("conn-up gen=%d (current %d)", l.gen, s.gen)
	}
	if accept {
		s.lastRecv = s.now
		s.maxMsg = frame.DefaultMaxMessageSize
	}
	if accept {
		s.authBusy, s.hasNext, s.authNext = false, false, nil
	}
	s.c.ConnUp(s.now, l.gen)
	s.collect()
	if !accept {
		if s.cur.effects != 1 || len(s.cur.closes) != 1 || s.cur.closes[0].Gen != l.gen || l.up {
			s.failf("ConnUp of abandoned gen %d: want exactly its EffectClose, got %d effects", l.gen, s.cur.effects)
		}
		return
	}
	if s.state != core.StateHandshaking {
		s.failf("ConnUp: state %v", s.state)
	}
	if s.cfg.AuthMethod != "" {
		if len(s.cur.auths) != 1 || !s.cur.auths[0].Initial || s.cur.wrote {
			s.failf("ConnUp with auth: want one initial EffectAuth and nothing written")
		}
	} else if !l.gotConnect {
		s.failf("ConnUp: CONNECT not written")
	}
}

func (s *sim) resolveAuth(i int) {
	a := s.auths[i]
	s.auths = slices.Delete(s.auths, i, i+1)
	fail := s.inject(fAuthFail, 1, 4)
	var err error
	if fail {
		err = errAuth
	}
	live := a.gen == s.gen && (s.state == core.StateHandshaking || s.state == core.StateConnected)
	l := s.links[a.gen]
	s.begin(stepOther)
	if s.tracing {
		s.tracef("auth-result gen=%d initial=%v err=%v", a.gen, a.initial, err)
	}
	connectBefore := l.gotConnect
	next, hasNext := s.authNext, s.hasNext
	if a.gen == s.gen {
		s.authBusy, s.hasNext, s.authNext = false, false, nil
	}
	s.c.AuthResult(s.now, a.gen, a.initial, []byte("sim-token"), err)
	s.collect()
	wantAsk := live && !fail && hasNext
	if n := len(s.cur.auths); n != b2i(wantAsk) || wantAsk && (s.cur.auths[0].Initial || !bytes.Equal(s.cur.auths[0].Challenge, next)) {
		s.failf("AuthResult with challenge kept=%v (%q): %d auth effects %v", hasNext, next, n, s.cur.auths)
	}
	switch {
	case !live:
		if s.cur.effects > 0 || s.cur.wrote {
			s.failf("AuthResult of gen %d in %v must be ignored", a.gen, s.state)
		}
	case fail:
		if s.state != core.StateDisconnected {
			s.failf("failed AuthResult: state %v", s.state)
		}
	case a.initial:
		if connectBefore || !l.gotConnect {
			s.failf("initial AuthResult: CONNECT not written once")
		}
	default:
		if s.cur.authResps != 1 {
			s.failf("AuthResult: %d AUTH_RESPONSE written", s.cur.authResps)
		}
	}
}

func (s *sim) disconnect() {
	l := s.curLink()
	s.stats.faults[fDisconnect]++
	if !l.up || s.chance(1, 5) {
		s.begin(stepOther)
		if s.tracing {
			s.tracef("driver drops the connection")
		}
		live := s.state == core.StateConnecting || s.state == core.StateHandshaking || s.state == core.StateConnected
		s.c.Drop(s.now, errDropped)
		s.collect()
		if live != s.cur.lost {
			s.failf("Drop in %v: lost=%v", s.cur.from, s.cur.lost)
		}
		return
	}
	s.begin(stepConnFailed)
	if s.tracing {
		s.tracef("connection of gen %d breaks", l.gen)
	}
	s.c.ConnFailed(s.now, l.gen, errReset)
	s.collect()
	if l.up {
		s.failf("broken connection of gen %d not closed", l.gen)
	}
}

// stale delivers a late event of an old generation; the Conn must ignore
// it, or answer a late ConnUp with EffectClose.
func (s *sim) stale() {
	var old []*link
	for _, l := range s.linkOrder {
		if l.gen < s.gen {
			old = append(old, l)
		}
	}
	var asks []int
	for i, a := range s.auths {
		if a.gen < s.gen {
			asks = append(asks, i)
		}
	}
	if len(old) == 0 {
		return
	}
	s.stats.faults[fStale]++
	o := old[s.rng.IntN(len(old))]
	if l := s.curLink(); l != nil && l.closed && !l.dialed && s.chance(1, 4) {
		// The reader of a connection the Conn already closed reports
		// it broken, before any redial.
		s.begin(stepConnFailed)
		if s.tracing {
			s.tracef("late conn-failed of closed gen=%d", l.gen)
		}
		before := len(s.reqs)
		s.c.ConnFailed(s.now, l.gen, errReset)
		s.collect()
		if s.state != s.cur.from || before != 0 && s.cur.completions != before || s.cur.lostPushes > 0 {
			s.failf("late ConnFailed of closed gen %d in %v: state %v, %d completions, %d pushes", l.gen, s.cur.from, s.state, s.cur.completions, s.cur.lostPushes)
		}
		return
	}
	switch k := s.rng.IntN(4); {
	case k == 0 && o.dialed:
		o.dialed = false
		s.connUp(o)
	case k == 1 && o.undelivered() > 0:
		s.deliver(o, 1+s.rng.IntN(o.undelivered()))
	case k == 2 && len(asks) > 0:
		s.resolveAuth(asks[s.rng.IntN(len(asks))])
	default:
		s.begin(stepOther)
		if s.tracing {
			s.tracef("stale conn-failed gen=%d", o.gen)
		}
		s.c.ConnFailed(s.now, o.gen, errReset)
		s.collect()
		if s.cur.effects > 0 {
			s.failf("ConnFailed of old gen %d produced %d effects", o.gen, s.cur.effects)
		}
	}
}

// ---------------------------------------------------------------------------
// The API
// ---------------------------------------------------------------------------

func (s *sim) notUsableErr() error {
	if s.state >= core.StateClosing {
		return core.ErrClosed
	}
	return core.ErrDisconnected
}

func (s *sim) apiRequest() {
	t := requestKinds[s.rng.IntN(len(requestKinds))]
	isRequest := !s.chance(1, 20)
	if !isRequest {
		t = pulsarpb.BaseCommand_FLOW
	}
	cmd := buildRequest(t)
	w := &simWaiter{s: s, typ: t}
	s.begin(stepOther)
	id, err := s.c.Request(s.now, cmd, w)
	if s.tracing {
		s.tracef("request %v: id=%d err=%v", t, id, err)
	}
	switch {
	case s.state != core.StateConnected:
		if !errors.Is(err, s.notUsableErr()) {
			s.failf("Request in %v: err %v, want %v", s.state, err, s.notUsableErr())
		}
	case s.cfg.MaxPending > 0 && len(s.reqs) >= s.cfg.MaxPending:
		if !errors.Is(err, core.ErrTooManyPending) {
			s.failf("Request with %d pending, limit %d: err %v, want ErrTooManyPending", len(s.reqs), s.cfg.MaxPending, err)
		}
		s.stats.limited++
	case !isRequest:
		if !errors.Is(err, core.ErrNotRequest) {
			s.failf("Request of %v: err %v, want ErrNotRequest", t, err)
		}
	case err != nil:
		s.failf("Request of %v while connected: %v", t, err)
	}
	if err == nil {
		s.track(w, id)
	} else {
		w.status = waitRejected
		s.stats.rejected++
	}
	s.collect()
	if err == nil && !s.cur.wrote {
		s.failf("request %d not written", id)
	}
}

func (s *sim) apiCancel() {
	id := s.nextReqID + uint64(s.rng.IntN(3))
	if len(s.reqOrder) > 0 && s.chance(4, 5) {
		id = s.reqOrder[s.rng.IntN(len(s.reqOrder))]
	}
	w := s.reqs[id]
	s.begin(stepOther)
	ok := s.c.Cancel(id)
	if s.tracing {
		s.tracef("cancel %d: %v", id, ok)
	}
	if ok != (w != nil) {
		s.failf("Cancel(%d) = %v, model pending %v", id, ok, w != nil)
	}
	if w != nil {
		w.status = waitCancelled
		delete(s.reqs, id)
		s.stats.cancelled++
	}
	if len(s.reqOrder) > 64 {
		s.reqOrder = slices.DeleteFunc(s.reqOrder, func(id uint64) bool { return s.reqs[id] == nil })
	}
	s.collect()
	if s.cur.effects > 0 || s.cur.wrote {
		s.failf("Cancel produced effects")
	}
}

func (s *sim) apiSend() {
	cmd := flowCmd(1, 10)
	if s.chance(1, 2) {
		cmd = ackCmd(1, 7, 3)
	}
	s.begin(stepOther)
	err := s.c.Send(s.now, cmd)
	if s.tracing {
		s.tracef("send %v: %v", cmd.GetType(), err)
	}
	s.collect()
	if s.state == core.StateConnected {
		if err != nil || !s.cur.wrote {
			s.failf("Send while connected: err %v, wrote %v", err, s.cur.wrote)
		}
	} else if !errors.Is(err, s.notUsableErr()) || s.cur.wrote {
		s.failf("Send in %v: err %v", s.state, err)
	}
}

func (s *sim) apiCheckPublish() {
	max := frame.Padding + s.maxMsg
	n := 4 + []int{100, max, max + 1, 1 << 30}[s.rng.IntN(4)]
	s.begin(stepOther)
	err := s.c.CheckPublish(n)
	s.collect()
	switch {
	case s.state != core.StateConnected:
		if !errors.Is(err, s.notUsableErr()) {
			s.failf("CheckPublish in %v: %v", s.state, err)
		}
	case n-4 > max:
		if !errors.Is(err, core.ErrMessageTooLarge) {
			s.failf("CheckPublish(%d), limit %d: %v", n, max, err)
		}
	case err != nil:
		s.failf("CheckPublish(%d), limit %d: %v", n, max, err)
	}
	if s.state == core.StateConnected && s.c.MaxMessageSize() != s.maxMsg {
		s.failf("MaxMessageSize() = %d, CONNECTED said %d", s.c.MaxMessageSize(), s.maxMsg)
	}
}

func (s *sim) apiAdd() {
	producer := s.chance(1, 2)
	list, next := &s.consumers, &s.nextConsID
	if producer {
		list, next = &s.producers, &s.nextProdID
	}
	id := *next
	dup := len(*list) > 0 && s.chance(1, 5)
	if dup {
		id = (*list)[s.rng.IntN(len(*list))].id
	} else {
		// A fresh id comes from the Conn, which never hands one out
		// twice: the model's count of those handed out so far, plus one.
		newID := s.c.NewConsumerID
		if producer {
			newID = s.c.NewProducerID
		}
		got := newID()
		if got != id {
			s.failf("new id %d (producer=%v), want %d", got, producer, id)
		}
		*next++
	}
	h := &simHandler{s: s, producer: producer, id: id, toldEpoch: -1}
	s.begin(stepOther)
	var err error
	if producer {
		err = s.c.AddProducer(id, h)
	} else {
		err = s.c.AddConsumer(id, h)
	}
	if s.tracing {
		s.tracef("add producer=%v id=%d: %v", producer, id, err)
	}
	switch {
	case s.state >= core.StateClosing:
		if !errors.Is(err, core.ErrClosed) {
			s.failf("Add while %v: %v", s.state, err)
		}
	case dup:
		if !errors.Is(err, core.ErrDuplicateID) {
			s.failf("Add of registered id %d: %v", id, err)
		}
	case err != nil:
		s.failf("Add(%d): %v", id, err)
	default:
		*list = append(*list, h)
	}
	s.collect()
	if s.cur.effects > 0 || s.cur.wrote {
		s.failf("Add produced effects")
	}
}

func (s *sim) apiRemove() {
	if s.chance(1, 10) {
		s.begin(stepOther)
		id := 500 + uint64(s.rng.IntN(10)) // never registered
		sent := s.c.RemoveProducer(s.now, id, nil) || s.c.RemoveConsumer(s.now, id, nil)
		s.collect()
		if sent || s.cur.effects > 0 || s.cur.wrote {
			s.failf("Remove of unregistered id %d did something", id)
		}
		return
	}
	producer := len(s.consumers) == 0 || (len(s.producers) > 0 && s.chance(1, 2))
	list := &s.consumers
	if producer {
		list = &s.producers
	}
	i := s.rng.IntN(len(*list))
	h := (*list)[i]
	t := pulsarpb.BaseCommand_CLOSE_CONSUMER
	if producer {
		t = pulsarpb.BaseCommand_CLOSE_PRODUCER
	}
	w := &simWaiter{s: s, typ: t, closeOf: h.id, closeProducer: producer}
	h.removed = true
	*list = slices.Delete(*list, i, i+1)
	connected := s.state == core.StateConnected
	if connected {
		s.newWaiters = append(s.newWaiters, w)
	} else {
		w.status = waitRejected
	}
	s.begin(stepOther)
	var sent bool
	if producer {
		sent = s.c.RemoveProducer(s.now, h.id, w)
	} else {
		sent = s.c.RemoveConsumer(s.now, h.id, w)
	}
	if s.tracing {
		s.tracef("remove producer=%v id=%d: sent=%v", producer, h.id, sent)
	}
	if sent != connected {
		s.failf("Remove in %v: sent CLOSE %v", s.state, sent)
	}
	s.collect()
}

func (s *sim) closersDone() bool {
	for _, w := range s.closers {
		if w.status == waitPending {
			return false
		}
	}
	return true
}

func (s *sim) beginClose() {
	s.began = true
	connected := s.state == core.StateConnected
	regs := len(s.producers) + len(s.consumers)
	s.begin(stepOther)
	if s.tracing {
		s.tracef("begin-close")
	}
	n := s.c.BeginClose(s.now, func(id uint64) core.Waiter {
		w := &simWaiter{s: s, closeOf: id, closeAny: true}
		s.newWaiters = append(s.newWaiters, w)
		s.closers = append(s.closers, w)
		return w
	})
	s.collect()
	if s.state != core.StateClosing {
		s.failf("BeginClose: state %v", s.state)
	}
	if connected && n != regs || !connected && n != 0 || n != len(s.closers) {
		s.failf("BeginClose in %v sent %d CLOSE requests (%d closers) for %d registrations", s.cur.from, n, len(s.closers), regs)
	}
}

func (s *sim) finishClose() {
	s.begin(stepFinishClose)
	if s.tracing {
		s.tracef("finish-close")
	}
	s.c.FinishClose(s.now)
	s.collect()
	s.ended("FinishClose")
}

// ended checks the end of the Conn for good, by FinishClose or a refusal:
// closed, nothing pending, every handler told and removed.
func (s *sim) ended(by string) {
	if s.state != core.StateClosed || len(s.reqs) != 0 {
		s.failf("%s: state %v, %d pending", by, s.state, len(s.reqs))
	}
	for _, hs := range [][]*simHandler{s.producers, s.consumers} {
		for _, h := range hs {
			if !h.toldClosed {
				s.failf("%s: handler %d not told of the final stop", by, h.id)
			}
			h.removed = true
		}
	}
	s.producers, s.consumers = nil, nil
	s.checkRegistrations()
}

// ---------------------------------------------------------------------------
// The broker's behaviour
// ---------------------------------------------------------------------------

func (s *sim) brokerAct(l *link) {
	switch {
	case !l.gotConnect:
		// Waiting for CONNECT.
	case !l.connected:
		s.brokerHandshake(l)
	case s.calm:
		switch {
		case l.pingOwed > 0:
			l.pingOwed--
			s.brokerSendBytes(l, pongFrame)
		case len(l.outstanding) > 0:
			s.brokerAnswer(l, 0)
		}
	default:
		s.brokerConnected(l)
	}
}

func (s *sim) brokerHandshake(l *link) {
	switch {
	case s.inject(fSilence, 1, 10):
		l.silentUntil = s.now.Add(time.Duration(s.rng.Int64N(int64(3 * s.cfg.KeepAliveInterval))))
		if s.tracing {
			s.tracef("broker gen=%d silent until %v", l.gen, s.rel(l.silentUntil))
		}
	case s.inject(fRefuse, 1, 6):
		// Mostly a refusal to retry; one in ten refuses the
		// credentials, which ends the Conn (and the seed's run).
		code := pulsarpb.ServerError_ServiceNotReady
		if s.chance(1, 10) {
			code = pulsarpb.ServerError_AuthenticationError
		}
		s.brokerSend(l, errorAnswer(math.MaxUint64, code, "sim: refused"))
	case s.cfg.AuthMethod != "" && !l.challenged && s.inject(fAuthChallenge, 1, 3):
		l.challenged = true
		l.awaitAuth = true
		s.brokerSend(l, authChallenge(s.cfg.AuthMethod, "sim-challenge"))
	case l.awaitAuth:
		// Waiting for AUTH_RESPONSE.
		if !s.calm && s.chance(1, 4) {
			s.brokerSendBytes(l, pingFrame)
		}
	case s.inject(fProtocol, 1, 10):
		s.brokerSend(l, success(1)) // not a command for the handshake
	case !s.calm && s.chance(1, 8):
		s.brokerSendBytes(l, pingFrame)
	default:
		max := int32(0)
		if s.chance(1, 3) {
			max = int32(1<<20 + s.rng.IntN(1<<20))
		}
		s.brokerSend(l, connected("Pulsar-Server-sim", max))
		l.connected = true
	}
}

type brokerMove uint8

const (
	bAnswer brokerMove = iota
	bPong
	bPing
	bReceipt
	bSendError
	bMessage
	bConsumerPush
	bUnknownPush
	bDrop
	bDuplicate
	bUnknownID
	bBrokerClose
	bChallenge
	bProtocol
	bSilence
	bRefuse
	numBrokerMoves
)

func (s *sim) brokerConnected(l *link) {
	var w [numBrokerMoves]int
	if len(l.outstanding) > 0 {
		w[bAnswer] = 30
	}
	if l.pingOwed > 0 {
		w[bPong] = 30
	}
	w[bPing] = 3
	if len(s.producers) > 0 {
		w[bReceipt] = 12
		w[bSendError] = 2
	}
	if len(s.consumers) > 0 {
		w[bMessage] = 10
		w[bConsumerPush] = 3
	}
	w[bUnknownPush] = 2
	if s.has(fDrop) && len(l.outstanding) > 0 {
		w[bDrop] = 5
	}
	if s.has(fDuplicate) && len(l.answered) > 0 {
		w[bDuplicate] = 5
	}
	if s.has(fUnknownID) {
		w[bUnknownID] = 3
	}
	if s.has(fBrokerClose) && len(s.producers)+len(s.consumers) > 0 {
		w[bBrokerClose] = 3
	}
	if s.has(fAuthChallenge) {
		w[bChallenge] = 2
	}
	if s.has(fProtocol) {
		w[bProtocol] = 2
	}
	if s.has(fSilence) {
		w[bSilence] = 1
	}
	if s.has(fRefuse) && s.chance(1, 10) {
		w[bRefuse] = 1
	}
	total := 0
	for _, x := range w {
		total += x
	}
	n := s.rng.IntN(total)
	var m brokerMove
	for m = 0; n >= w[m]; m++ {
		n -= w[m]
	}
	switch m {
	case bAnswer:
		i := 0
		if len(l.outstanding) > 1 && s.inject(fReorder, 1, 2) {
			i = s.rng.IntN(len(l.outstanding))
		}
		s.brokerAnswer(l, i)
	case bPong:
		l.pingOwed--
		s.brokerSendBytes(l, pongFrame)
	case bPing:
		s.brokerSendBytes(l, pingFrame)
	case bReceipt:
		h := s.producers[s.rng.IntN(len(s.producers))]
		s.brokerSend(l, sendReceipt(h.id, s.seq()))
	case bSendError:
		h := s.producers[s.rng.IntN(len(s.producers))]
		s.brokerSend(l, sendError(h.id, s.seq(), pulsarpb.ServerError_PersistenceError, "sim"))
	case bMessage:
		h := s.consumers[s.rng.IntN(len(s.consumers))]
		s.brokerSendMessage(l, h.id, s.inject(fBadChecksum, 1, 3))
	case bConsumerPush:
		h := s.consumers[s.rng.IntN(len(s.consumers))]
		if s.chance(1, 2) {
			s.brokerSend(l, activeConsumerChange(h.id, s.chance(1, 2)))
		} else {
			s.brokerSend(l, reachedEndOfTopic(h.id))
		}
	case bUnknownPush:
		id := 1000 + uint64(s.rng.IntN(10))
		if s.chance(1, 2) {
			s.brokerSend(l, sendReceipt(id, s.seq()))
		} else {
			s.brokerSendMessage(l, id, false)
		}
	case bDrop:
		// A PRODUCER waiting for exclusive access too: its operation
		// timeout bounds the wait.
		i := s.rng.IntN(len(l.outstanding))
		s.stats.faults[fDrop]++
		if s.tracing {
			s.tracef("broker gen=%d drops request %d", l.gen, l.outstanding[i].id)
		}
		l.outstanding = slices.Delete(l.outstanding, i, i+1)
	case bDuplicate:
		s.stats.faults[fDuplicate]++
		r := l.answered[s.rng.IntN(len(l.answered))]
		s.brokerSend(l, s.answer(r, s.chance(1, 4), true))
	case bUnknownID:
		s.stats.faults[fUnknownID]++
		id := s.nextReqID + 100 + uint64(s.rng.IntN(100))
		if s.chance(1, 4) {
			id = 0
		}
		s.brokerSend(l, s.answer(brokerReq{id: id, typ: requestKinds[s.rng.IntN(len(requestKinds))]}, s.chance(1, 3), true))
	case bBrokerClose:
		s.stats.faults[fBrokerClose]++
		s.brokerClose(l)
	case bChallenge:
		s.stats.faults[fAuthChallenge]++
		s.brokerSend(l, authChallenge(s.cfg.AuthMethod, fmt.Sprintf("sim-refresh-%d", s.stats.faults[fAuthChallenge])))
	case bProtocol:
		s.stats.faults[fProtocol]++
		s.brokerProtocol(l)
	case bRefuse:
		// As a broker refuses a refresh's credentials, or expired ones.
		s.stats.faults[fRefuse]++
		s.brokerSend(l, errorAnswer(math.MaxUint64, pulsarpb.ServerError_AuthenticationError, "sim: credentials refused"))
	case bSilence:
		s.stats.faults[fSilence]++
		l.silentUntil = s.now.Add(s.cfg.KeepAliveInterval/2 + time.Duration(s.rng.Int64N(int64(3*s.cfg.KeepAliveInterval))))
		if s.tracing {
			s.tracef("broker gen=%d silent until %v", l.gen, s.rel(l.silentUntil))
		}
	}
}

func (s *sim) seq() uint64 {
	s.nextSeq++
	return s.nextSeq
}

// brokerAnswer answers the i-th outstanding request.
func (s *sim) brokerAnswer(l *link, i int) {
	r := l.outstanding[i]
	fail := s.inject(fServerError, 1, 4)
	ready := true
	if r.typ == pulsarpb.BaseCommand_PRODUCER && !r.notReady && !fail && !s.calm && s.chance(1, 4) {
		ready = false
	}
	s.brokerSend(l, s.answer(r, fail, ready))
	if !ready {
		l.outstanding[i].notReady = true
		return
	}
	l.outstanding = slices.Delete(l.outstanding, i, i+1)
	l.answered = append(l.answered, r)
	if len(l.answered) > 16 {
		l.answered = slices.Delete(l.answered, 0, 1)
	}
}

func (s *sim) brokerClose(l *link) {
	producer := len(s.consumers) == 0 || (len(s.producers) > 0 && s.chance(1, 2))
	url := ""
	if s.chance(1, 2) {
		url = "pulsar://other.sim:6650"
	}
	if producer {
		h := s.producers[s.rng.IntN(len(s.producers))]
		if s.chance(1, 3) {
			s.brokerSend(l, topicMigrated(pulsarpb.CommandTopicMigrated_Producer, h.id, "pulsar://migrated.sim:6650", ""))
		} else {
			s.brokerSend(l, closeProducerPush(h.id, url, ""))
		}
		return
	}
	h := s.consumers[s.rng.IntN(len(s.consumers))]
	if s.chance(1, 3) {
		s.brokerSend(l, topicMigrated(pulsarpb.CommandTopicMigrated_Consumer, h.id, "pulsar://migrated.sim:6650", ""))
	} else {
		s.brokerSend(l, closeConsumerPush(h.id, url, ""))
	}
}

// brokerProtocol sends something a broker should not: a command out of
// place, a MESSAGE without its payload, or an answer of the wrong type.
func (s *sim) brokerProtocol(l *link) {
	switch k := s.rng.IntN(4); {
	case k == 0:
		s.brokerSend(l, lookup("persistent://public/default/sim")) // a client's command
	case k == 1:
		s.brokerSend(l, connected("Pulsar-Server-sim", 0)) // CONNECTED again
	case k == 2 && len(s.consumers) > 0:
		s.brokerSend(l, messageCmd(s.consumers[0].id, 7, s.seq())) // MESSAGE without payload
	case len(l.outstanding) > 0:
		i := s.rng.IntN(len(l.outstanding))
		r := l.outstanding[i]
		if r.typ == pulsarpb.BaseCommand_PRODUCER {
			s.brokerSend(l, lookupConnect(r.id, "pulsar://broker.sim:6650"))
		} else {
			// A PRODUCER_SUCCESS that says "not ready" answers a request
			// that is no PRODUCER.
			s.brokerSend(l, producerSuccess(r.id, "sim-producer", false))
		}
		l.outstanding = slices.Delete(l.outstanding, i, i+1)
	}
}

// ---------------------------------------------------------------------------
// Settling: the faults stop
// ---------------------------------------------------------------------------

// settleEpsilon is the slack of the settling bounds: in a healthy network,
// no time passes between a timer and what it starts.
const settleEpsilon = 10 * time.Millisecond

// settle stops every fault — the broker behaves, dials and the
// Authenticator succeed — and checks that the Conn converges to connected
// within a bound, stays connected, resolves everything in flight, and then
// stops gracefully.
func (s *sim) settle() {
	if s.state == core.StateClosed {
		return
	}
	s.calm = true
	s.calmStart = s.now
	if s.tracing {
		s.tracef("---- faults stop ----")
	}
	for _, l := range s.linkOrder {
		l.silentUntil = time.Time{}
	}
	if s.state == core.StateClosing {
		s.settleClose(false)
		return
	}
	ka := s.cfg.KeepAliveInterval
	// A connection wedged before the faults stopped is dropped within
	// 2 keepalive intervals, a handshake ends within the connect timeout,
	// and the backoff delay is at most BackoffMax.
	limit := s.calmStart.Add(2*ka + s.cfg.ConnectTimeout + s.cfg.BackoffMax + settleEpsilon)
	var stableUntil time.Time
	issued := 0
	for i := 0; ; i++ {
		if i > 100_000 {
			s.failf("settling: no progress after %d steps", i)
		}
		if s.state == core.StateClosed {
			return // a refusal of the credentials, sent before the faults stopped, ended the Conn
		}
		if s.convergedAt.IsZero() && s.state == core.StateConnected &&
			(!s.connectedAt.Before(s.calmStart) || !s.now.Before(s.calmStart.Add(2*ka))) {
			s.convergedAt = s.now
			stableUntil = s.now.Add(3*ka + settleEpsilon)
			s.stats.settleMax = max(s.stats.settleMax, s.now.Sub(s.calmStart))
			if s.tracing {
				s.tracef("converged after %v", s.now.Sub(s.calmStart))
			}
		}
		if s.convergedAt.IsZero() && s.now.After(limit) {
			s.failf("did not converge to connected within %v after the faults stopped: %v at %v", limit.Sub(s.calmStart), s.state, s.rel(s.now))
		}
		if !s.convergedAt.IsZero() && !s.now.Before(stableUntil) && !s.workPending() && len(s.reqs) == 0 {
			break
		}
		// Whatever was in flight when the faults stopped is answered at
		// once or times out; nothing waits past the operation timeout.
		if len(s.reqs) > 0 && !s.convergedAt.IsZero() && s.now.After(stableUntil.Add(s.cfg.OperationTimeout)) {
			s.failf("%d requests still pending %v after the Conn converged", len(s.reqs), s.now.Sub(s.convergedAt))
		}
		if s.calmWork() {
			continue
		}
		if !s.convergedAt.IsZero() && s.now.Before(stableUntil) && issued < 8 && s.chance(1, 3) {
			issued++
			s.apiRequest()
			continue
		}
		nd := s.c.NextDeadline()
		if nd.IsZero() {
			s.failf("settling: nothing to do and no deadline in state %v", s.state)
		}
		s.tick(nd)
	}
	s.settleClose(true)
}

// calmWork does the next thing a healthy network and broker would do at
// once; it reports false when there is nothing to do but wait.
func (s *sim) calmWork() bool {
	l := s.curLink()
	switch {
	case l == nil:
		return false
	case l.dialed:
		s.resolveDial(l)
	case s.currentAuth() >= 0:
		s.resolveAuth(s.currentAuth())
	case l.undelivered() > 0:
		s.deliver(l, l.undelivered())
	case l.owes(s.now):
		s.brokerAct(l)
	default:
		return false
	}
	return true
}

// settleClose stops the Conn gracefully: BeginClose (unless begun), the
// broker answers the CLOSE requests, FinishClose.
func (s *sim) settleClose(connected bool) {
	if !s.began {
		s.beginClose()
	}
	limit := s.now.Add(s.cfg.OperationTimeout + settleEpsilon)
	for !s.closersDone() {
		if s.calmWork() {
			continue
		}
		nd := s.c.NextDeadline()
		if nd.IsZero() || nd.After(limit) {
			s.failf("closing: CLOSE requests unresolved, next deadline %v", s.rel(nd))
		}
		s.tick(nd)
	}
	s.finishClose()
	if connected {
		for _, w := range s.closers {
			if w.outcome != outAnswer {
				s.failf("graceful stop: %v for %d ended %s, want an answer", w.typ, w.closeOf, outcomeNames[w.outcome])
			}
		}
	}
}

// runSeed runs one seed and returns the simulator and the failure, if any.
func runSeed(seed uint64, actions int, tracing bool) (s *sim, failure string) {
	s = newSim(seed, faultsForSeed(seed), tracing)
	defer func() {
		s.stats.seeds = 1
		s.stats.steps = s.steps
		if r := recover(); r != nil {
			if f, ok := r.(simFailure); ok {
				failure = f.msg
			} else {
				failure = fmt.Sprintf("panic: %v\n%s", r, debug.Stack())
			}
		}
	}()
	s.run(actions)
	s.releaseReaders()
	return s, ""
}
