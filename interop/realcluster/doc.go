// Package realcluster proves pulsarconn's Client, and the reference
// producer and consumer (refclient), against a Pulsar cluster whose
// topics move: two brokers and a proxy, bundles unloaded, a broker killed.
//
// Each scenario is written once, against a small interface (cluster), and
// runs twice: TestFake<Name> against pulsartest's cluster mode, in this
// process, always; TestReal<Name> against the real cluster that
// scripts/pulsar-cluster.sh starts, when its variables are set:
//
//	bash scripts/pulsar-cluster.sh start
//	eval "$(bash scripts/pulsar-cluster.sh env)"
//	cd interop && go test -count=1 -v -run TestReal ./realcluster
//	bash scripts/pulsar-cluster.sh stop
//
// Without PULSAR_CLUSTER_BROKERS the TestReal tests are not run (the
// package says so, and runs the TestFake ones), unless
// PULSARCONN_REQUIRE_REAL_CLUSTER=1, which makes the absence a failure.
// The real tests kill a broker with kill -9 and start it again with
// `pulsar-cluster.sh start-broker N`. See docs/realbroker.md and, for
// where the fake differs from the real cluster, docs/pulsartest.md.
package realcluster
