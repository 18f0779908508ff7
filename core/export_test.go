package core

import (
	"log/slog"
	"time"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// PlantedBug reports whether this build has the simulation's planted bug.
const PlantedBug = plantedBug

// EffectKind names the kind of an Effect, the tests' flat record of one
// item of a Ready.
type EffectKind uint8

// The kinds of Effect: one per slice of Ready.
const (
	EffectDial EffectKind = iota + 1
	EffectClose
	EffectAuth
	EffectComplete
	EffectDeliver
	EffectState
	EffectLog
)

// Effect is one item of a Ready, flattened for the tests' transcripts and
// models: Dials, Closes and Auths first, then the notices in Walk's order.
type Effect struct {
	Kind     EffectKind
	Gen      uint64
	Address  string
	Deadline time.Time
	Err      error

	Initial   bool
	Challenge []byte

	Waiter Waiter
	Result *pulsarpb.BaseCommand

	Handler Handler
	Push    Push

	State     State
	From      State
	Event     ConnEvent
	Reconnect bool

	Level slog.Level
	Msg   string
	Attrs []slog.Attr
}

// Output appends the Ready's bytes to dst, Output then Latest as the
// driver writes them, and forgets them.
func (c *Conn) Output(dst []byte) []byte {
	dst = append(dst, c.rd.Output...)
	for _, f := range c.rd.Latest {
		dst = append(dst, f...)
	}
	c.rd.Output = c.rd.Output[:0]
	c.rd.clearLatest()
	return dst
}

// Effects appends the Ready's other items to dst, flattened, and forgets
// them (Output and Latest stay).
func (c *Conn) Effects(dst []Effect) []Effect {
	rd := c.Ready()
	for _, d := range rd.Dials {
		dst = append(dst, Effect{Kind: EffectDial, Gen: d.Gen, Address: d.Address, Deadline: d.Deadline})
	}
	for _, x := range rd.Closes {
		dst = append(dst, Effect{Kind: EffectClose, Gen: x.Gen, Err: x.Err})
	}
	for _, a := range rd.Auths {
		dst = append(dst, Effect{Kind: EffectAuth, Gen: a.Gen, Initial: a.Initial, Challenge: a.Challenge})
	}
	f := flattener{rd: rd, dst: dst}
	rd.Walk(&f)
	out := append([]byte(nil), rd.Output...)
	var latest [numLatest][]byte
	for i, l := range rd.Latest {
		latest[i] = append([]byte(nil), l...)
	}
	c.Advance()
	c.rd.Output = append(c.rd.Output, out...)
	for i, l := range latest {
		c.rd.Latest[i] = append(c.rd.Latest[i], l...)
	}
	return f.dst
}

type flattener struct {
	rd  *Ready
	dst []Effect
}

func (f *flattener) Complete(i int) {
	x := f.rd.Completions[i]
	f.dst = append(f.dst, Effect{Kind: EffectComplete, Waiter: x.Waiter, Result: x.Result, Err: x.Err})
}

func (f *flattener) Deliver(i int) {
	x := f.rd.Deliveries[i]
	f.dst = append(f.dst, Effect{Kind: EffectDeliver, Handler: x.Handler, Push: x.Push})
}

func (f *flattener) State(i int) {
	x := f.rd.States[i]
	f.dst = append(f.dst, Effect{Kind: EffectState, State: x.To, From: x.From, Event: x.Event, Err: x.Cause, Reconnect: x.Reconnect})
}

func (f *flattener) Log(i int) {
	x := f.rd.Logs[i]
	f.dst = append(f.dst, Effect{Kind: EffectLog, Level: x.Level, Msg: x.Msg, Attrs: x.Attrs})
}

// NextDeadline is the deadline a Ready would carry now.
func (c *Conn) NextDeadline() time.Time { return c.nextDeadline() }
