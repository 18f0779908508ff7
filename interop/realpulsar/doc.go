// Package realpulsar proves pulsarconn against a real Apache Pulsar broker:
// the standalone broker that scripts/pulsar.sh starts from released Apache
// Pulsar artifacts, as a plain JVM process on loopback.
//
// The tests run when PULSAR_SERVICE_URL and the other variables printed by
// `bash scripts/pulsar.sh start` are set:
//
//	bash scripts/pulsar.sh start
//	eval "$(bash scripts/pulsar.sh env)"
//	cd interop && go test -count=1 -v ./realpulsar/...
//	bash scripts/pulsar.sh stop
//
// Without PULSAR_SERVICE_URL the package runs no test and says so, unless
// PULSARCONN_REQUIRE_REAL_BROKER=1 (as .ci/run sets), which makes the absence
// a failure. See docs/realbroker.md.
package realpulsar
