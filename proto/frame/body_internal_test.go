package frame

import "testing"

// TestBodySize: a body fits its buffer, which is larger by less than an
// eighth of it (or 16 bytes), rounds to itself, and never shrinks as
// bodies grow.
func TestBodySize(t *testing.T) {
	prev := 0
	for n := 1; n <= maxKeptBody; n++ {
		size := bodySize(n)
		switch {
		case size < n || size-n >= max(16, n/8):
			t.Fatalf("bodySize(%d) = %d", n, size)
		case size < prev:
			t.Fatalf("bodySize(%d) = %d, under bodySize(%d) = %d", n, size, n-1, prev)
		case bodySize(size) != size:
			t.Fatalf("bodySize(%d) = %d, and bodySize(%d) = %d", n, size, size, bodySize(size))
		}
		prev = size
	}
	if got := bodySize(1060); got != 1152 {
		t.Errorf("bodySize(1060) = %d, want 1152", got)
	}
}
