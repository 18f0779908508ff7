package clock_test

import (
	"fmt"
	"time"

	"github.com/pulsarconn/pulsarconn/adapters/clock"
)

// System is the Broker's clock unless pulsarconn.WithClock gives another
// (adapters/memory's Clock in tests). Its readings are for deadlines:
// durations between them are exact, whatever the wall clock does.
func ExampleSystem() {
	c := clock.System{}
	start := c.Now()
	fired := make(chan time.Time)
	c.AfterFunc(10*time.Millisecond, func() { fired <- c.Now() })
	fmt.Println((<-fired).Sub(start) >= 10*time.Millisecond)
	// Output: true
}
