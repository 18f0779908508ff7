//go:build simbug

package core

// plantedBug, in a build with the simbug tag only, makes failAll forget to
// fail a pending PRODUCER when the connection is lost: its Waiter is not
// completed then and its pending entry outlives the connection. The
// simulation must catch it.
const plantedBug = true
