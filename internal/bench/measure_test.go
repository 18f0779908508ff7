package bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestHistogramBuckets(t *testing.T) {
	for _, v := range []uint64{0, 1, 15, 16, 17, 31, 32, 33, 1000, 123456789, 1 << 40} {
		i := bucket(v)
		assert.LessOrEqual(t, lower(i), v, "v=%d", v)
		assert.Less(t, v, lower(i+1), "v=%d", v)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.9, 900 * time.Microsecond}, {0.99, 990 * time.Microsecond}} {
		got := h.Quantile(c.q)
		assert.InEpsilon(t, float64(c.want), float64(got), 0.04, "q=%v", c.q)
	}
	var m Histogram
	m.Merge(&h)
	m.Merge(&h)
	assert.Equal(t, uint64(2000), m.Count())
	assert.Equal(t, h.Quantile(0.5), m.Quantile(0.5))
}
