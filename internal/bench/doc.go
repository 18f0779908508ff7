// Package bench measures the connection layer against the ceiling the
// machine allows, on loopback TCP, in one run.
//
// It holds three things:
//
//   - Server, a lean benchmark broker: it speaks just enough of the
//     protocol to be the peer of a benchmark (CONNECT, LOOKUP,
//     PARTITIONED_METADATA, PRODUCER, SEND, SUBSCRIBE and FLOW, PING,
//     CLOSE_*), reads each frame into a reused buffer, decodes only the
//     fields it needs from the hot commands (type, request id, producer and
//     sequence ids, permits) by scanning the protobuf varints, answers from
//     pre-encoded templates, and writes through one buffered writer per
//     connection that it flushes only when it has read everything the
//     client sent. Its discard-sink mode reads and drops everything after
//     CONNECTED. Options.SecondServer adds a second, independent server
//     (pulsartest in another process), a faithful fake rather than a fast
//     one, so that no figure depends on this server alone.
//
//   - Raw client loops, the ceiling: pre-encoded frames written in one
//     write per batch from a reused buffer, answers sliced in place from
//     a reused read buffer and checked by scanning the few fields a
//     correct client must check, one goroutine where one suffices (a
//     writer and a reader woken once per batch in the Pipelined shape).
//     They do the least a client must do to get the same work done on
//     the same connection.
//
//   - The same scenarios through the library (pulsarconn.Start over TCP);
//     Run, which measures every scenario for both in one run and returns
//     a Report: one Row per figure, with the ratio of the library to the
//     raw loop on each server and, when another client's figures are
//     merged in (Report.Merge), to that client; and RunOps, which runs
//     one scenario on one side for a fixed number of operations.
//
// The scenarios are request/response (PARTITIONED_METADATA) with 1 and 64
// requests in flight, publish of pre-encoded 1 KiB SEND frames into the
// sink, publish with receipts routed to a producer Handler, delivery of
// MESSAGE frames to a consumer Handler, memory per idle connection (over
// an in-memory network the caller supplies, since only cmd and tests may
// import adapters) and the time to reconnect after the server drops every
// connection. See docs/benchmarks.md.
package bench
