package core

import (
	"log/slog"
	"time"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Ready is what one or more inputs produced, for the driver to carry out
// (see the package documentation for the order). Take it with Conn.Ready
// after the inputs of a step and call Conn.Advance once it is carried out;
// the slices belong to the Conn and are reused by the next step.
//
// Completions, Deliveries, States and Logs are the step's notices: each has
// a Seq, increasing in the order they happened, and Walk visits them in
// that order, so a Handler sees a connection's loss after the pushes that
// came before it.
type Ready struct {
	// Output is the bytes to write on the current connection.
	Output []byte
	// Latest holds the Conn's own frames of which only the latest
	// unwritten one matters, encoded, one per kind: the PING of the
	// keepalive, the PONG that answers the broker's PINGs, and the
	// AUTH_RESPONSE to its latest challenge (empty: none this step). The
	// driver writes them after Output and keeps at most one of each kind
	// unwritten: a newer one replaces an older one still waiting, so
	// however many PINGs or challenges a broker that stops reading sends,
	// they hold one frame each.
	Latest [numLatest][]byte
	// Dials are connections to open.
	Dials []Dial
	// Closes are connections (or dials) to close.
	Closes []Close
	// Auths are requests for the Authenticator.
	Auths []AuthRequest
	// Completions are Waiters to complete.
	Completions []Completion
	// Deliveries are pushes to hand to Handlers.
	Deliveries []Delivery
	// States are the changes of state, with their cause.
	States []StateChange
	// Logs are records to log.
	Logs []Log
	// Deadline is when Tick must next be called; zero when nothing is
	// scheduled. It is computed from the pending timers at each Ready.
	Deadline time.Time

	seq uint32
}

// Dial asks the driver to open a connection to Address and report ConnUp
// or ConnFailed with Gen; Deadline is the connect deadline.
type Dial struct {
	Gen      uint64
	Address  string
	Deadline time.Time
}

// Close asks the driver to close the connection of generation Gen (Err says
// why). Closing an already closed or unknown generation is a no-op.
type Close struct {
	Gen uint64
	Err error
}

// AuthRequest asks the Authenticator for credentials — Initial ones for
// CONNECT, or the answer to Challenge — to report with AuthResult and Gen.
// A Conn has at most one in flight per connection: the challenges that
// arrive before its AuthResult are merged into one request for the
// latest, made at that AuthResult.
type AuthRequest struct {
	Gen       uint64
	Initial   bool
	Challenge []byte
}

// Completion completes Waiter with Result or Err.
type Completion struct {
	Seq    uint32
	Waiter Waiter
	Result *pulsarpb.BaseCommand
	Err    error
}

// Delivery hands Push to Handler.
type Delivery struct {
	Seq     uint32
	Handler Handler
	Push    Push
}

// ConnEvent is what a change of state means for an observer of the
// connection's life.
type ConnEvent uint8

// The connection events a StateChange can carry.
const (
	// EventNone: nothing to report (connecting, handshaking, closing).
	EventNone ConnEvent = iota
	// EventOpened: a connection completed its handshake.
	EventOpened
	// EventClosed: a connection that had completed its handshake ended
	// (Cause says why: ErrClosed at a stop).
	EventClosed
	// EventHandshakeFailed: a connection attempt ended before CONNECTED.
	EventHandshakeFailed
)

// StateChange is a change of state, with its cause and what it means.
type StateChange struct {
	Seq      uint32
	From, To State
	// Cause is why the connection or attempt ended (nil otherwise).
	Cause error
	// Event is the connection event the change makes.
	Event ConnEvent
	// Reconnect, for EventOpened, is true unless this is the Conn's
	// first connection.
	Reconnect bool
}

// Log is a record to log.
type Log struct {
	Seq   uint32
	Level slog.Level
	Msg   string
	Attrs []slog.Attr
}

// Visitor receives a Ready's notices from Walk; each method gets an index
// into its slice.
type Visitor interface {
	Complete(i int)
	Deliver(i int)
	State(i int)
	Log(i int)
}

// Walk visits the notices (Completions, Deliveries, States, Logs) in the
// order they happened.
func (r *Ready) Walk(v Visitor) {
	var c, d, s, l int
	for {
		best, kind := ^uint32(0), -1
		if c < len(r.Completions) && r.Completions[c].Seq < best {
			best, kind = r.Completions[c].Seq, 0
		}
		if d < len(r.Deliveries) && r.Deliveries[d].Seq < best {
			best, kind = r.Deliveries[d].Seq, 1
		}
		if s < len(r.States) && r.States[s].Seq < best {
			best, kind = r.States[s].Seq, 2
		}
		if l < len(r.Logs) && r.Logs[l].Seq < best {
			kind = 3
		}
		switch kind {
		case 0:
			v.Complete(c)
			c++
		case 1:
			v.Deliver(d)
			d++
		case 2:
			v.State(s)
			s++
		case 3:
			v.Log(l)
			l++
		default:
			return
		}
	}
}

// next returns the next notice sequence number.
func (r *Ready) next() uint32 {
	r.seq++
	return r.seq
}

// The kinds of Ready.Latest.
const (
	latestPing = iota
	latestPong
	latestAuthResponse
	numLatest
)

// reset forgets what was carried out, keeping the slices' arrays.
func (r *Ready) reset() {
	r.Output = r.Output[:0]
	r.clearLatest()
	r.Dials = zero(r.Dials)
	r.Closes = zero(r.Closes)
	r.Auths = zero(r.Auths)
	r.Completions = zero(r.Completions)
	r.Deliveries = zero(r.Deliveries)
	r.States = zero(r.States)
	r.Logs = zero(r.Logs)
	r.Deadline = time.Time{}
	r.seq = 0
}

// clearLatest empties Latest, keeping its arrays.
func (r *Ready) clearLatest() {
	for i := range r.Latest {
		r.Latest[i] = r.Latest[i][:0]
	}
}

// zero empties s, letting go of what its elements referenced.
func zero[T any](s []T) []T {
	clear(s)
	return s[:0]
}

// Empty reports whether there is nothing to carry out (the deadline
// aside).
func (r *Ready) Empty() bool { return len(r.Output) == 0 && r.onlyOutput() }

// onlyOutput reports whether there is nothing to carry out but Output.
func (r *Ready) onlyOutput() bool {
	n := 0
	for _, f := range r.Latest {
		n += len(f)
	}
	return n+len(r.Dials)+len(r.Closes)+len(r.Auths)+len(r.Completions)+
		len(r.Deliveries)+len(r.States)+len(r.Logs) == 0
}
