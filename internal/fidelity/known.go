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
		Scenario: "lookup", Step: "lookup-new", Field: "LOOKUP_RESPONSE.authoritative",
		Real: "true", Fake: "false (echoed)",
		Reason: "a broker's Connect is always authoritative; contract_test/behaviours.go LookupAndPartitionedMetadata asserts the echo through our client, so the fix goes with a change there",
	},
	{
		Scenario: "lookup", Step: "lookup-partition", Field: "LOOKUP_RESPONSE.authoritative",
		Real: "true", Fake: "false (echoed)",
		Reason: "as lookup-new",
	},
	{
		Scenario: "error-send-unknown-producer", Step: "send",
		Real: "connection closed", Fake: "SEND_ERROR UnknownError",
		Reason: "deliberate: pulsartest answers so that a test sees which message went astray (producer.go)",
	},
	{
		Scenario: "delayed-delivery", Step: "flow",
		Real: "only the message without deliver_at_time", Fake: "both messages at once",
		Reason: "issue 12: pulsartest has no delayed delivery (deliver_at_time and deliver_after are ignored)",
	},
	{
		Scenario: "consumer-lifecycle", Step: "flow-rest", Field: "MESSAGE.redelivery_count",
		Real: "absent (0)", Fake: "1",
		Reason: "pulsartest counts every return of an unacked message; a broker counts only explicit redeliveries, and never on Exclusive/Failover; interop/consume_test.go TestIndividualAck relies on the count",
	},
	{
		Scenario: "redelivery-exclusive", Step: AnyStep, Field: "MESSAGE.redelivery_count",
		Real: "absent (0)", Fake: "1, then 2",
		Reason: "a broker keeps no redelivery count for an Exclusive subscription; pulsartest does (same follow-up as consumer-lifecycle)",
	},
	{
		Scenario: "redelivery-after-disconnect", Step: AnyStep, Field: "MESSAGE.redelivery_count",
		Real: "absent after the consumer closed, then 1", Fake: "1, then 2",
		Reason: "a consumer closing does not count as a redelivery on a broker; in pulsartest it does (same follow-up as consumer-lifecycle)",
	},
}
