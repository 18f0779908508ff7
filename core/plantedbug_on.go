//go:build simbug

package core

// plantedBug, in a build with the simbug tag only, makes failAll forget to
// fail a PRODUCER that waits for exclusive access (producer_ready=false)
// when the connection is lost: its Waiter is never completed and its
// pending entry outlives the connection. The simulation must catch it.
const plantedBug = true
