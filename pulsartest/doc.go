// Package pulsartest provides a fake Apache Pulsar broker for tests, served
// over any net.Listener (or a single net.Conn), in the manner of
// net/http/httptest.
//
// The server speaks the public Pulsar binary protocol, so any client can be
// tested against it: the handshake (with optional token authentication and
// AUTH_CHALLENGE rounds), PING/PONG, LOOKUP and PARTITIONED_METADATA,
// producers (PRODUCER, SEND, SEND_RECEIPT, access modes), and consumers
// (SUBSCRIBE, FLOW, MESSAGE, ACK, redelivery, delayed delivery, SEEK,
// GET_LAST_MESSAGE_ID) on in-memory topics. Request ids are the client's and every answer carries
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
//     net.Pipe, or DialHook to reach it in memory). For several brokers,
//     StartCluster(t, n) or NewCluster(n): brokers that own topics,
//     redirect lookups and refuse what they do not own, optionally behind
//     a proxy (WithProxy). For the HTTP side of a broker (the admin REST
//     API and HTTP lookup, so that http:// service URLs work), StartAdmin
//     on a listener of its own, or AdminHandler.
//  2. Point the client at URL().
//  3. Steer the conversation: Intercept or InterceptEvery to answer a
//     command yourself, delay it or drop it; Hold to keep one until
//     Release; CloseProducer, CloseConsumer, TopicMigrated,
//     ActiveConsumerChange, ReachedEndOfTopic, Push and SendRaw to push;
//     Unload, Migrate (and a Cluster's Move, AddBroker, RemoveBroker) to
//     move topics.
//  4. Declare faults: FailNext (with OnTopic) to answer commands with an
//     error; DropConnections, DropAfterFrames, CorruptNextMessageChecksum,
//     SendGarbage, SetAnswerPings, SilentHandshake (SetNeverConnect) and
//     ChallengeEvery, on the clock of WithClock, to fail the wire.
//  5. Check what happened: Received, Messages, Stored, Frames,
//     Deliveries, Acks, Redeliveries, Subscription, LastConnect,
//     LastAuthResponse; WaitReceived, WaitMessages, WaitConns, WaitFrame,
//     WaitSubscribers and WaitSubscription block until something happens
//     (they are woken by the server's changes, never poll), so tests need
//     not sleep.
//  6. Close the server (NewTCP and StartCluster do it when the test ends);
//     Close waits for every goroutine the server started.
//
// # Limits
//
// A server bounds what one client can make it hold, as a server others
// connect to must (pulsarconn serve): a frame is read as its bytes arrive,
// up to WithMaxMessageSize; answers a client leaves unread are capped by
// WithMaxQueuedOutput, past which it is disconnected; and a connection
// must complete its handshake within WithHandshakeTimeout.
package pulsartest
