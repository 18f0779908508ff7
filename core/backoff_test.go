package core_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/core"
)

func TestBackoffBaseDoublesToMax(t *testing.T) {
	b := core.Backoff{Min: 100 * time.Millisecond, Max: 60 * time.Second}
	want := []time.Duration{
		100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond, 12800 * time.Millisecond,
		25600 * time.Millisecond, 51200 * time.Millisecond, 60 * time.Second, 60 * time.Second, 60 * time.Second,
	}
	for i, w := range want {
		require.Equal(t, w, b.Base(), "attempt %d", i)
		require.Equal(t, w, b.Base(), "Base does not advance")
		b.Next()
	}
	for range 1000 {
		b.Next()
	}
	assert.Equal(t, 60*time.Second, b.Base(), "stays at the cap")
}

func TestBackoffJitter(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    func() float64
		want func(base time.Duration) time.Duration
	}{
		{"nil Rand takes the midpoint", nil, func(d time.Duration) time.Duration { return d/2 + d/4 }},
		{"0 gives half", func() float64 { return 0 }, func(d time.Duration) time.Duration { return d / 2 }},
		{"0.5 gives three quarters", func() float64 { return 0.5 }, func(d time.Duration) time.Duration { return d/2 + d/4 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := core.Backoff{Min: 100 * time.Millisecond, Max: 60 * time.Second, Rand: tc.r}
			for i := range 20 {
				base := b.Base()
				assert.Equal(t, tc.want(base), b.Next(), "attempt %d", i)
			}
		})
	}

	t.Run("almost 1 gives almost the base", func(t *testing.T) {
		b := core.Backoff{Min: 100 * time.Millisecond, Max: 60 * time.Second, Rand: func() float64 { return math.Nextafter(1, 0) }}
		for range 20 {
			base := b.Base()
			d := b.Next()
			assert.LessOrEqual(t, d, base)
			assert.Greater(t, d, base-time.Microsecond)
		}
	})
}

func TestBackoffSeededIsReproducibleAndInRange(t *testing.T) {
	seq := func(seed uint64) []time.Duration {
		r := rand.New(rand.NewPCG(seed, 1))
		b := core.Backoff{Min: 100 * time.Millisecond, Max: 60 * time.Second, Rand: r.Float64}
		var ds []time.Duration
		for range 40 {
			base := b.Base()
			d := b.Next()
			require.GreaterOrEqual(t, d, base/2)
			require.LessOrEqual(t, d, base)
			ds = append(ds, d)
		}
		return ds
	}
	assert.Equal(t, seq(7), seq(7), "the same seed gives the same delays")
	assert.NotEqual(t, seq(7), seq(8), "the delays are jittered")
}

func TestBackoffReset(t *testing.T) {
	b := core.Backoff{Min: time.Second, Max: time.Minute}
	for range 5 {
		b.Next()
	}
	require.Equal(t, 32*time.Second, b.Base())
	b.Reset()
	assert.Equal(t, time.Second, b.Base())
	assert.Equal(t, 750*time.Millisecond, b.Next())
	assert.Equal(t, 2*time.Second, b.Base())
}

// The delay must never wrap around: a huge Max ("no cap") once made the
// doubling overflow into negative delays, then zero — a tight reconnect
// loop.
func TestBackoffHugeMaxDoesNotOverflow(t *testing.T) {
	for _, max := range []time.Duration{math.MaxInt64, math.MaxInt64 / 3, 1 << 62} {
		b := core.Backoff{Min: 100 * time.Millisecond, Max: max}
		prev := time.Duration(0)
		for i := range 200 {
			base := b.Base()
			require.Positive(t, base, "Max %v, attempt %d", max, i)
			require.GreaterOrEqual(t, base, prev, "Max %v, attempt %d: the delay never shrinks", max, i)
			require.LessOrEqual(t, base, max)
			require.Positive(t, b.Next(), "Max %v, attempt %d", max, i)
			prev = base
		}
		assert.Equal(t, max, b.Base(), "the cap is reached, not overshot")
	}
}

func TestBackoffMinAboveMax(t *testing.T) {
	b := core.Backoff{Min: time.Minute, Max: time.Second}
	assert.Equal(t, time.Second, b.Base())
	assert.Equal(t, 750*time.Millisecond, b.Next())
}

// TestReconnectBackoffSequence fails the dial again and again and checks
// each delay between a failure and the next dial.
func TestReconnectBackoffSequence(t *testing.T) {
	for _, tc := range []struct {
		name string
		rand func() float64
	}{
		{"seeded", rand.New(rand.NewPCG(42, 42)).Float64},
		{"nil Rand", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, core.Config{Rand: tc.rand})
			h.start()
			base := 100 * time.Millisecond
			var delays []time.Duration
			for i := range 30 {
				require.Equal(t, core.StateConnecting, h.c.State())
				gen := h.c.Gen()
				require.Equal(t, uint64(i+1), gen)
				h.effects()
				h.connFailed(errors.New("connection refused"))
				require.Equal(t, core.StateDisconnected, h.c.State())

				delay := h.c.NextDeadline().Sub(h.now)
				require.GreaterOrEqual(t, delay, base/2, "attempt %d", i)
				require.LessOrEqual(t, delay, base, "attempt %d", i)
				if tc.rand == nil {
					require.Equal(t, base/2+base/4, delay, "attempt %d", i)
				}
				delays = append(delays, delay)

				h.advance(delay - time.Nanosecond)
				require.Empty(t, only(h.effects(), core.EffectDial), "attempt %d: no dial before the delay", i)
				h.advance(time.Nanosecond)
				dials := only(h.effects(), core.EffectDial)
				require.Len(t, dials, 1, "attempt %d", i)
				require.Equal(t, gen+1, dials[0].Gen)
				require.Equal(t, h.now.Add(10*time.Second), dials[0].Deadline)

				base = min(2*base, 60*time.Second)
			}
			assert.Equal(t, uint64(30), h.c.Stats().HandshakeFailures)
			assert.Equal(t, 60*time.Second, base)
			if tc.rand != nil {
				distinct := map[time.Duration]bool{}
				for _, d := range delays[12:] {
					distinct[d] = true
				}
				assert.Greater(t, len(distinct), 10, "capped delays are still jittered")
			}
		})
	}
}

func TestBackoffResetAfterHandshake(t *testing.T) {
	h := newHarness(t, core.Config{})
	h.start()
	for range 6 {
		h.connFailed(errors.New("refused"))
		h.redial()
	}
	h.connFailed(errors.New("refused"))
	delay := h.c.NextDeadline().Sub(h.now)
	require.Equal(t, 75*(1<<6)*time.Millisecond, delay, "the 7th failure waits 6.4s*3/4")
	h.redial()
	h.handshake()

	h.connFailed(errors.New("connection reset by peer"))
	assert.Equal(t, 75*time.Millisecond, h.c.NextDeadline().Sub(h.now), "a successful handshake starts the backoff again")
	h.redial()
	h.connFailed(errors.New("refused"))
	assert.Equal(t, 150*time.Millisecond, h.c.NextDeadline().Sub(h.now))
}
