package memory_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/ports"
)

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// firing records which timers ran, and what the clock read when they did.
type firing struct {
	mu  sync.Mutex
	log []string
}

func (f *firing) add(c *memory.Clock, name string) func() {
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.log = append(f.log, fmt.Sprintf("%s@%v", name, c.Now().Sub(epoch)))
	}
}

func (f *firing) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	log := f.log
	f.log = nil
	return log
}

func TestClockAdvanceRunsDueTimersInOrder(t *testing.T) {
	tests := []struct {
		name    string
		arm     map[string]time.Duration // timer name -> delay, armed in name order
		advance []time.Duration
		want    [][]string // fired per Advance
	}{
		{
			name:    "nothing due",
			arm:     map[string]time.Duration{"a": time.Second},
			advance: []time.Duration{999 * time.Millisecond},
			want:    [][]string{nil},
		},
		{
			name:    "due exactly at the deadline",
			arm:     map[string]time.Duration{"a": time.Second},
			advance: []time.Duration{time.Second},
			want:    [][]string{{"a@1s"}},
		},
		{
			name:    "deadline order, not arming order",
			arm:     map[string]time.Duration{"a": 3 * time.Second, "b": time.Second, "c": 2 * time.Second},
			advance: []time.Duration{10 * time.Second},
			want:    [][]string{{"b@1s", "c@2s", "a@3s"}},
		},
		{
			name:    "equal deadlines in arming order",
			arm:     map[string]time.Duration{"a": time.Second, "b": time.Second, "c": time.Second},
			advance: []time.Duration{time.Second},
			want:    [][]string{{"a@1s", "b@1s", "c@1s"}},
		},
		{
			name:    "spread over several advances",
			arm:     map[string]time.Duration{"a": time.Second, "b": 3 * time.Second},
			advance: []time.Duration{2 * time.Second, time.Second},
			want:    [][]string{{"a@1s"}, {"b@3s"}},
		},
		{
			name:    "zero and negative delays run on Advance(0)",
			arm:     map[string]time.Duration{"a": 0, "b": -time.Second},
			advance: []time.Duration{0},
			want:    [][]string{{"a@0s", "b@0s"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := memory.NewClock(epoch)
			var f firing
			for _, name := range []string{"a", "b", "c"} {
				if d, ok := tt.arm[name]; ok {
					c.AfterFunc(d, f.add(c, name))
				}
			}
			var total time.Duration
			for i, d := range tt.advance {
				c.Advance(d)
				total += d
				assert.Equal(t, tt.want[i], f.take(), "Advance #%d", i+1)
				assert.Equal(t, epoch.Add(total), c.Now(), "Now after Advance #%d", i+1)
			}
		})
	}
}

func TestClockCallbacksMayArmTimers(t *testing.T) {
	c := memory.NewClock(epoch)
	var f firing
	// A ticker: every second, rearm for the next second.
	var tick func()
	tick = func() {
		f.add(c, "tick")()
		c.AfterFunc(time.Second, tick)
	}
	c.AfterFunc(time.Second, tick)

	c.Advance(3500 * time.Millisecond)
	assert.Equal(t, []string{"tick@1s", "tick@2s", "tick@3s"}, f.take())
	assert.Equal(t, 1, c.Pending())
	next, ok := c.NextDeadline()
	require.True(t, ok)
	assert.Equal(t, epoch.Add(4*time.Second), next)
}

func TestClockStop(t *testing.T) {
	c := memory.NewClock(epoch)
	var f firing
	a := c.AfterFunc(time.Second, f.add(c, "a"))
	b := c.AfterFunc(2*time.Second, f.add(c, "b"))
	require.Equal(t, 2, c.Pending())

	assert.True(t, b.Stop(), "Stop of an armed timer")
	assert.False(t, b.Stop(), "Stop of a stopped timer")
	assert.Equal(t, 1, c.Pending())

	c.Advance(5 * time.Second)
	assert.Equal(t, []string{"a@1s"}, f.take())
	assert.False(t, a.Stop(), "Stop of a timer that ran")
	assert.Zero(t, c.Pending())
	_, ok := c.NextDeadline()
	assert.False(t, ok)
}

func TestClockCallbackMayStopALaterTimer(t *testing.T) {
	c := memory.NewClock(epoch)
	var f firing
	var later ports.Timer
	c.AfterFunc(time.Second, func() {
		f.add(c, "first")()
		assert.True(t, later.Stop())
	})
	later = c.AfterFunc(time.Second, f.add(c, "later")) // same deadline, armed after
	c.Advance(time.Second)
	assert.Equal(t, []string{"first@1s"}, f.take())
}

func TestClockSet(t *testing.T) {
	c := memory.NewClock(epoch)
	var f firing
	c.AfterFunc(time.Minute, f.add(c, "a"))
	c.Set(epoch.Add(time.Hour))
	assert.Equal(t, []string{"a@1m0s"}, f.take())
	assert.Equal(t, epoch.Add(time.Hour), c.Now())

	c.Set(epoch.Add(time.Hour)) // the same time is allowed
	assert.Panics(t, func() { c.Set(epoch) }, "Set backwards")
	assert.Panics(t, func() { c.Advance(-time.Nanosecond) }, "Advance backwards")
	assert.Equal(t, epoch.Add(time.Hour), c.Now())
}

func TestClockZeroValue(t *testing.T) {
	var c memory.Clock
	assert.True(t, c.Now().IsZero())
	ran := false
	c.AfterFunc(time.Second, func() { ran = true })
	c.Advance(time.Second)
	assert.True(t, ran)
}

// TestClockConcurrentUse is for the race detector: arming, stopping and
// reading from many goroutines while another advances.
func TestClockConcurrentUse(t *testing.T) {
	c := memory.NewClock(epoch)
	var ran sync.WaitGroup
	var wg sync.WaitGroup
	const goroutines, timers = 8, 50
	ran.Add(goroutines * timers)
	for range goroutines {
		wg.Go(func() {
			for i := range timers {
				c.AfterFunc(time.Duration(i)*time.Millisecond, ran.Done)
				// Far enough out that no Advance here reaches it before Stop.
				assert.True(t, c.AfterFunc(time.Hour, func() { t.Error("stopped timer ran") }).Stop())
				_ = c.Now()
				_ = c.Pending()
				_, _ = c.NextDeadline()
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			c.Advance(time.Millisecond)
		}
	})
	wg.Wait()
	c.Advance(time.Second) // whatever was armed after the advancing stopped
	ran.Wait()
	assert.Zero(t, c.Pending())
}
