package core

import "time"

// BackoffPolicy yields the delays between connection attempts: Next is
// asked for the delay before each reconnection, Reset after a successful
// handshake. A Conn calls it only from its own methods, so it needs no
// locking of its own; Config.Backoff sets it, and Backoff is the default.
type BackoffPolicy interface {
	Next() time.Duration
	Reset()
}

// backoffPolicy returns cfg.Backoff, or the default Backoff built from
// BackoffMin, BackoffMax and Rand.
func (cfg *Config) backoffPolicy() BackoffPolicy {
	if cfg.Backoff != nil {
		return cfg.Backoff
	}
	return &Backoff{Min: cfg.BackoffMin, Max: cfg.BackoffMax, Rand: cfg.Rand}
}

// Backoff, the default BackoffPolicy, computes reconnection delays: Min doubling up to Max, with
// "equal jitter" — each delay is drawn uniformly from [d/2, d] where d is
// the un-jittered delay — so that many clients dropped at once do not
// reconnect in lockstep, while the delay still grows. Reset after a
// successful handshake.
type Backoff struct {
	Min, Max time.Duration
	// Rand returns a number in [0, 1); it is the only source of
	// randomness, so a seeded one makes the sequence reproducible.
	Rand    func() float64
	attempt int
}

// Next returns the next delay and advances the sequence.
func (b *Backoff) Next() time.Duration {
	d := b.Base()
	b.attempt++
	half := d / 2
	r := 0.5
	if b.Rand != nil {
		r = b.Rand()
	}
	return half + time.Duration(r*float64(d-half))
}

// Base returns the un-jittered delay that Next will jitter.
func (b *Backoff) Base() time.Duration {
	d := b.Min
	for i := 0; i < b.attempt && d < b.Max; i++ {
		if d > b.Max/2 {
			// Doubling would pass the cap, or overflow when Max is
			// near the largest Duration.
			d = b.Max
			break
		}
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	return d
}

// Reset starts the sequence again from Min.
func (b *Backoff) Reset() { b.attempt = 0 }
