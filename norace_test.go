//go:build !race

package pulsarconn_test

// raceEnabled: the tests run under the race detector.
const raceEnabled = false
