// Package chaos is a fault-injecting TCP proxy for tests: it sits between
// a client (a pulsarconn Broker) and a server (pulsartest) on loopback and
// damages the byte stream the way real networks and middleboxes do —
// latency, a bandwidth cap, frames sliced into single-byte writes, resets
// (RST) at any moment or after a byte count that cuts a frame in half, and
// half-open connections that stop forwarding while both sockets stay up.
//
// # Why not toxiproxy
//
// github.com/Shopify/toxiproxy/v2 (v2.5.0, the latest) was evaluated as a
// library and not adopted:
//
//   - its Proxy is built with NewProxy(*ApiServer, ...) and toxics are
//     added as JSON (ToxicCollection.AddToxicJson): there is no typed Go
//     API, and the API server drags in 17 modules (prometheus
//     client_golang, zerolog, gorilla/mux, tomb.v1, a 2022 x/sys) that
//     would enter our go.mod for one test helper;
//   - its "timeout" toxic, the nearest thing to a half-open connection,
//     drops the data on the floor, so a connection cannot resume intact
//     when the partition heals, as TCP does; ours holds the bytes;
//   - "limit_data" ends a connection after N bytes with an orderly close
//     (FIN), and "reset_peer" resets (RST) only after a time; we need an
//     RST after exactly N bytes, to cut a Pulsar frame in the middle;
//   - it offers no way to wait for an event (bytes forwarded, a chunk
//     held back), and our tests never sleep to wait.
//
// This package imports only the standard library and is about 500 lines.
//
// # Usage
//
//  1. Listen(upstream) on 127.0.0.1:0, and point the client at Addr().
//  2. Change the weather at any time, also while connections run:
//     SetLatency, SetBandwidth, SetSlice, SetHalfOpen, ResetAfterBytes,
//     ResetAll. Settings apply to every connection, open or future.
//  3. Read Stats, or Wait for a condition on them (no polling, no sleep).
//  4. Close: it closes every connection and waits for every goroutine.
//
// Each connection runs four goroutines — a reader and a writer per
// direction, joined by a bounded queue so that latency delays the stream
// without throttling it — and the proxy one accept loop.
package chaos
