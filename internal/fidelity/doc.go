// Package fidelity compares pulsartest with a real Apache Pulsar broker,
// frame by frame.
//
// A Scenario is a short script of raw protocol commands (built with
// proto/pulsarpb and written with proto/frame over a net.Conn, never
// through the client in the root package), run against a Target: the real
// broker of scripts/pulsar.sh, or a pulsartest server. Run records what the
// Target answered as a Transcript: each command sent (by type) and each
// frame received, with its fields normalised so that what differs between
// two runs of the same broker (ledger ids, timestamps, server versions,
// generated producer names, the run's topic names, the service URLs) does
// not show, and what the protocol fixes (answer types, error codes,
// partitions, the authoritative flag, entry ids, redelivery counts,
// payloads, ordering) does.
//
// The real broker's transcripts are recorded in testdata/realbroker; the
// test of this package replays every scenario against pulsartest and
// compares. Compare honours the KnownDifferences table, which names each
// difference the fake keeps on purpose, and fails when one of them is no
// longer observed. interop/realpulsar runs the scenarios live against
// both and, with PULSARCONN_RECORD=1, records the transcripts again.
package fidelity
