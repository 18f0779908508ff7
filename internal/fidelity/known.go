package fidelity

// KnownDifferences is every difference between the real broker (Apache
// Pulsar 4.2.4 standalone, as scripts/pulsar.sh runs it) and pulsartest
// that the comparison forgives, each with its reason. It is kept in step
// with the differential table of docs/pulsartest.md; Compare reports an
// entry that no longer shows, so that the table only shrinks with the
// fixes.
var KnownDifferences = []KnownDifference{
	{
		Scenario: "handshake", Step: AnyStep, Field: "CONNECTED.feature_flags.supports_topic_watchers",
		Real: "true", Fake: "false",
		Reason: "pulsartest serves no topic list watchers (WATCH_TOPIC_LIST is ignored); announcing them would make clients wait for answers that never come",
	},
	{
		Scenario: "lookup", Step: AnyStep, Field: "LOOKUP_RESPONSE.proxy_through_service_url",
		Real: "true", Fake: "false",
		Reason: "a standalone broker asks clients to stay on the service URL; a broker of a cluster, which pulsartest models, answers false",
	},
	{
		Scenario: "error-send-unknown-producer", Step: "send",
		Real: "connection closed", Fake: "SEND_ERROR UnknownError",
		Reason: "deliberate: pulsartest answers so that a test sees which message went astray (producer.go)",
	},
}
