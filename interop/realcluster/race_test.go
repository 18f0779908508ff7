//go:build race

package realcluster

// raceEnabled: the race detector slows the fake cluster down about
// tenfold; TestFakeNoLoss sends fewer messages under it.
const raceEnabled = true
