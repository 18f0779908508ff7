// Package clock provides the production ports.Clock: [System], the time
// package's wall clock and timers.
package clock

import (
	"time"

	"github.com/pulsarconn/pulsarconn/ports"
)

// System is the ports.Clock of the time package. Its zero value, System{},
// is ready to use.
type System struct{}

var _ ports.Clock = System{}

// Now returns time.Now(), which carries a monotonic reading, so durations
// between two readings are immune to wall-clock steps.
func (System) Now() time.Time { return time.Now() }

// AfterFunc calls f in its own goroutine once d has elapsed, using
// time.AfterFunc; the returned *time.Timer is the ports.Timer.
func (System) AfterFunc(d time.Duration, f func()) ports.Timer {
	return time.AfterFunc(d, f)
}
