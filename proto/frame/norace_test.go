//go:build !race

package frame_test

// raceEnabled: the tests run under the race detector, whose sync.Pool
// drops a quarter of what is put back.
const raceEnabled = false
