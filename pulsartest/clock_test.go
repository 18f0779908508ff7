package pulsartest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

func TestClockOfMemoryClock(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	mc := memory.NewClock(t0)
	c := pulsartest.ClockOf(mc)
	require.Equal(t, t0, c.Now())
	fired := make(chan struct{}, 1)
	tm := c.AfterFunc(time.Second, func() { fired <- struct{}{} })
	mc.Advance(time.Second)
	<-fired
	require.False(t, tm.Stop())
}
