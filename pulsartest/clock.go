package pulsartest

import "time"

// Clock is the time source of a Server: what it stamps stored messages
// with (broker_timestamp) and what drives its timed behaviour
// (ChallengeEvery). It is defined here, and not taken from ports, so that
// pulsartest shares nothing with the client but proto/; ClockOf adapts any
// clock of the same shape, such as the fake clock of adapters/memory.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f, on a goroutine of the clock's choosing, once d
	// has passed; Stop on the returned Timer cancels the call.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a call armed with Clock.AfterFunc.
type Timer interface {
	// Stop cancels the call; it reports false if the call already ran or
	// was already stopped.
	Stop() bool
}

// ClockOf adapts a clock whose AfterFunc returns its own timer type (any
// type with Stop() bool), for example *memory.Clock, whose AfterFunc
// returns a ports.Timer:
//
//	srv := pulsartest.NewServer(pulsartest.WithClock(pulsartest.ClockOf(memory.NewClock(t0))))
func ClockOf[T Timer](c interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) T
}) Clock {
	return adaptedClock[T]{c}
}

type adaptedClock[T Timer] struct {
	c interface {
		Now() time.Time
		AfterFunc(d time.Duration, f func()) T
	}
}

func (a adaptedClock[T]) Now() time.Time { return a.c.Now() }

func (a adaptedClock[T]) AfterFunc(d time.Duration, f func()) Timer { return a.c.AfterFunc(d, f) }

// realClock is the default Clock: the wall clock and time.AfterFunc.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// WithClock sets the server's clock. Default: the wall clock
// (time.Now and time.AfterFunc).
func WithClock(c Clock) Option {
	return func(cfg *config) {
		if c != nil {
			cfg.ext.clock = c
		}
	}
}
