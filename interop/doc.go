// Package interop holds tests that run the official Apache Pulsar Go
// client (github.com/apache/pulsar-client-go) against pulsartest, the fake
// broker of this repository. It is a separate module so that the official
// client's dependencies never enter the main go.mod.
package interop
