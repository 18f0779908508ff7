package clock_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/pulsarconn/pulsarconn/adapters/clock"
	"github.com/pulsarconn/pulsarconn/ports"
)

func TestSystemNowIsMonotonic(t *testing.T) {
	var c ports.Clock = clock.System{}
	a := c.Now()
	b := c.Now()
	assert.False(t, b.Before(a))
	// A monotonic reading is present: Round(0) strips it, changing the value's
	// String.
	assert.NotEqual(t, a.String(), a.Round(0).String())
}

// TestSystemNowTracksTimeNow: a reading falls between the time package's
// readings around it, and its wall-clock part is the system's (no step of
// the system clock happens during a test).
func TestSystemNowTracksTimeNow(t *testing.T) {
	before := time.Now()
	n := clock.System{}.Now()
	after := time.Now()
	assert.False(t, n.Before(before), "not before time.Now() before it")
	assert.False(t, n.After(after), "not after time.Now() after it")
	assert.WithinDuration(t, before.Round(0), n.Round(0), time.Second, "wall clock")
}

func TestSystemAfterFunc(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
	}{
		{"immediate", 0},
		{"short", time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c ports.Clock = clock.System{}
			start := c.Now()
			ran := make(chan time.Time, 1)
			timer := c.AfterFunc(tt.d, func() { ran <- time.Now() })
			at := <-ran
			assert.GreaterOrEqual(t, at.Sub(start), tt.d, "no earlier than d")
			assert.False(t, timer.Stop(), "Stop after the call ran")
		})
	}
}

func TestSystemStop(t *testing.T) {
	var c ports.Clock = clock.System{}
	timer := c.AfterFunc(time.Hour, func() { t.Error("stopped timer ran") })
	assert.True(t, timer.Stop())
	assert.False(t, timer.Stop(), "second Stop")
}
