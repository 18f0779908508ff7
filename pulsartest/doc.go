// Package pulsartest provides a fake Apache Pulsar broker for tests, served
// over any net.Listener (or a single net.Conn), in the manner of
// net/http/httptest.
//
// The server speaks the public Pulsar binary protocol, so any client can be
// tested against it: the handshake (with optional token authentication and
// AUTH_CHALLENGE rounds), PING/PONG, LOOKUP and PARTITIONED_METADATA,
// producers (PRODUCER, SEND, SEND_RECEIPT, access modes), and consumers
// (SUBSCRIBE, FLOW, MESSAGE, ACK, redelivery, SEEK, GET_LAST_MESSAGE_ID) on
// in-memory topics. Request ids are the client's and every answer carries
// the one of its request. Where a broker's behaviour is simplified, the
// method or handler says so.
//
// It shares only the frame codec and the protobuf schema with the client
// code of this module, and none of its logic, so that a bug in the client
// cannot hide behind the same bug in the fake.
//
// # Usage
//
//  1. Start a server: NewTCP(t) in a test, or NewServer(opts...) and Start
//     or Serve on a listener of your choice (or ServeConn on one end of
//     net.Pipe).
//  2. Point the client at URL().
//  3. Steer the conversation: Intercept or InterceptEvery to answer a
//     command yourself, delay it or drop it; Hold to keep one until
//     Release; CloseProducer, CloseConsumer, TopicMigrated,
//     ActiveConsumerChange, ReachedEndOfTopic, Push and SendRaw to push;
//     DropConnections, SetAnswerPings and SetNeverConnect to fail.
//  4. Check what happened: Received, Messages, Stored, LastConnect,
//     LastAuthResponse; WaitReceived, WaitMessages and WaitConns block
//     until something happens, so tests need not sleep.
//  5. Close the server (NewTCP does it when the test ends); Close waits
//     for every goroutine the server started.
package pulsartest
