//go:build !race

package realcluster

// raceEnabled: see race_test.go.
const raceEnabled = false
