// Package engine is the driver of a Broker: the step engine that runs the
// core state machine under one lock and carries out each step's Ready
// (engine.go); the goroutines that dial, read, write and authenticate
// (io.go); the write queue and publish gate of a connection (conn.go); and
// the calls the Broker façade forwards (api.go, register.go). User code —
// Handlers, done functions, Observer events, logs — runs only from the
// ordered delivery queue of package deliver, never under the lock.
package engine
