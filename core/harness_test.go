package core_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// t0 is the time every test starts at. Time is a plain value: no test reads
// the wall clock or sleeps.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// harness drives a core.Conn the way the driver does: after every input it
// collects Output and Effects, and carries out the EffectComplete and
// EffectDeliver effects on their Waiters and Handlers, so that tests can
// check both the effects and what the Waiters and Handlers saw.
type harness struct {
	t   testing.TB
	c   *core.Conn
	now time.Time
	out []byte        // bytes written since the last written()
	eff []core.Effect // effects since the last effects()
}

func newHarness(t testing.TB, cfg core.Config) *harness {
	t.Helper()
	if cfg.Address == "" {
		cfg.Address = "broker.test:6650"
	}
	if cfg.ClientVersion == "" {
		cfg.ClientVersion = "pulsarconn-test/1.0"
	}
	return &harness{t: t, c: core.New(cfg), now: t0}
}

// step collects what the last input produced and carries out completions
// and deliveries.
func (h *harness) step() {
	h.t.Helper()
	h.out = h.c.Output(h.out)
	n := len(h.eff)
	h.eff = h.c.Effects(h.eff)
	for _, e := range h.eff[n:] {
		switch e.Kind {
		case core.EffectComplete:
			require.NotNil(h.t, e.Waiter, "EffectComplete without a Waiter")
			e.Waiter.Done(e.Result, e.Err)
		case core.EffectDeliver:
			require.NotNil(h.t, e.Handler, "EffectDeliver without a Handler")
			e.Handler.HandlePush(e.Push)
		}
	}
}

// advance moves the clock forward by d, calling Tick at every deadline
// NextDeadline names on the way, as the driver's timer would, and checks
// that each Tick handles every deadline that has passed.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	end := h.now.Add(d)
	for i := 0; ; i++ {
		require.Less(h.t, i, 100_000, "Tick keeps asking to be called")
		dl := h.c.NextDeadline()
		if dl.IsZero() || dl.After(end) {
			break
		}
		if dl.After(h.now) {
			h.now = dl
		}
		h.c.Tick(h.now)
		h.step()
		next := h.c.NextDeadline()
		require.Truef(h.t, next.IsZero() || next.After(h.now),
			"after Tick(%v), NextDeadline is %v: a passed deadline was not handled", h.rel(h.now), h.rel(next))
	}
	h.now = end
}

// advanceTo advances to the absolute time at.
func (h *harness) advanceTo(at time.Time) {
	h.t.Helper()
	require.False(h.t, at.Before(h.now), "time cannot go back")
	h.advance(at.Sub(h.now))
}

// rel renders t relative to t0, for messages.
func (h *harness) rel(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return "t0+" + t.Sub(t0).String()
}

// written decodes and forgets the bytes written since the last call.
func (h *harness) written() []*pulsarpb.BaseCommand {
	h.t.Helper()
	return decodeAll(h.t, h.take())
}

func (h *harness) take() []byte {
	b := h.out
	h.out = nil
	return b
}

func decodeAll(t testing.TB, b []byte) []*pulsarpb.BaseCommand {
	t.Helper()
	r := frame.NewReader(bytes.NewReader(b), 0)
	var cmds []*pulsarpb.BaseCommand
	for {
		f, err := r.Next()
		if err == io.EOF {
			return cmds
		}
		require.NoError(t, err, "core wrote an undecodable frame")
		require.Nil(t, f.Payload, "core writes simple frames only")
		cmds = append(cmds, f.Command)
	}
}

// writtenTypes is written, reduced to the command types.
func (h *harness) writtenTypes() []pulsarpb.BaseCommand_Type {
	h.t.Helper()
	return types(h.written())
}

func types(cmds []*pulsarpb.BaseCommand) []pulsarpb.BaseCommand_Type {
	var ts []pulsarpb.BaseCommand_Type
	for _, c := range cmds {
		ts = append(ts, c.GetType())
	}
	return ts
}

// writtenOne expects exactly one command written since the last call.
func (h *harness) writtenOne(want pulsarpb.BaseCommand_Type) *pulsarpb.BaseCommand {
	h.t.Helper()
	cmds := h.written()
	require.Len(h.t, cmds, 1, "written: %v", types(cmds))
	require.Equal(h.t, want, cmds[0].GetType())
	return cmds[0]
}

// effects returns and forgets the effects since the last call.
func (h *harness) effects() []core.Effect {
	e := h.eff
	h.eff = nil
	return e
}

func kinds(effs []core.Effect) []core.EffectKind {
	var ks []core.EffectKind
	for _, e := range effs {
		ks = append(ks, e.Kind)
	}
	return ks
}

func only(effs []core.Effect, k core.EffectKind) []core.Effect {
	var r []core.Effect
	for _, e := range effs {
		if e.Kind == k {
			r = append(r, e)
		}
	}
	return r
}

// withoutLogs drops EffectLog, whose text is not part of the contract.
func withoutLogs(effs []core.Effect) []core.Effect {
	var r []core.Effect
	for _, e := range effs {
		if e.Kind != core.EffectLog {
			r = append(r, e)
		}
	}
	return r
}

// recv feeds cmd, encoded and decoded by the codec, on the current
// generation.
func (h *harness) recv(cmd *pulsarpb.BaseCommand) {
	h.t.Helper()
	h.recvGen(h.c.Gen(), cmd)
}

func (h *harness) recvGen(gen uint64, cmd *pulsarpb.BaseCommand) {
	h.t.Helper()
	b, err := frame.AppendCommand(nil, cmd)
	require.NoError(h.t, err)
	h.recvBytes(gen, b)
}

// recvBytes feeds one encoded frame (total-size field included).
func (h *harness) recvBytes(gen uint64, b []byte) {
	h.t.Helper()
	f, err := frame.NewReader(bytes.NewReader(b), 0).Next()
	require.NoError(h.t, err)
	h.c.HandleFrame(h.now, gen, f)
	h.step()
}

func (h *harness) start() {
	h.t.Helper()
	h.c.Start(h.now)
	h.step()
}

func (h *harness) connUp() {
	h.t.Helper()
	h.c.ConnUp(h.now, h.c.Gen())
	h.step()
}

func (h *harness) connFailed(err error) {
	h.t.Helper()
	h.c.ConnFailed(h.now, h.c.Gen(), err)
	h.step()
}

func (h *harness) authResult(initial bool, data string, err error) {
	h.t.Helper()
	h.c.AuthResult(h.now, h.c.Gen(), initial, []byte(data), err)
	h.step()
}

// handshake takes a dialled connection through ConnUp, the initial
// authentication when configured, and CONNECTED; it forgets what that
// wrote and produced.
func (h *harness) handshake() {
	h.t.Helper()
	require.Equal(h.t, core.StateConnecting, h.c.State())
	h.connUp()
	if h.c.Config().AuthMethod != "" {
		auth := only(h.effects(), core.EffectAuth)
		require.Len(h.t, auth, 1)
		require.True(h.t, auth[0].Initial)
		h.authResult(true, "initial-credentials", nil)
	}
	h.recv(connected("Pulsar-Server-test", 0))
	require.Equal(h.t, core.StateConnected, h.c.State())
	h.written()
	h.effects()
}

// connect starts a fresh Conn and takes it to StateConnected.
func (h *harness) connect() {
	h.t.Helper()
	h.start()
	h.handshake()
}

// redial forgets the effects so far, waits for the backoff to pass and
// checks that a new dial, of the next generation, is asked for.
func (h *harness) redial() {
	h.t.Helper()
	require.Equal(h.t, core.StateDisconnected, h.c.State())
	gen := h.c.Gen()
	h.effects()
	h.advanceTo(h.c.NextDeadline())
	dials := only(h.effects(), core.EffectDial)
	require.Len(h.t, dials, 1)
	require.Equal(h.t, gen+1, dials[0].Gen)
	require.Equal(h.t, gen+1, h.c.Gen())
}

// request sends cmd as a request with a fresh recording waiter.
func (h *harness) request(cmd *pulsarpb.BaseCommand) (uint64, *waiter) {
	h.t.Helper()
	w := &waiter{}
	id, err := h.c.Request(h.now, cmd, w)
	h.step()
	require.NoError(h.t, err)
	return id, w
}

// waiter records how it was completed.
type waiter struct {
	calls  int
	result *pulsarpb.BaseCommand
	err    error
}

func (w *waiter) Done(result *pulsarpb.BaseCommand, err error) {
	w.calls++
	w.result = result
	w.err = err
}

// recorder is a Handler that records its pushes.
type recorder struct {
	pushes []core.Push
}

func (r *recorder) HandlePush(p core.Push) { r.pushes = append(r.pushes, p) }

func (r *recorder) take() []core.Push {
	p := r.pushes
	r.pushes = nil
	return p
}

func (r *recorder) ofKind(k core.PushKind) []core.Push {
	var ps []core.Push
	for _, p := range r.pushes {
		if p.Kind == k {
			ps = append(ps, p)
		}
	}
	return ps
}

// ---------------------------------------------------------------------------
// Commands the broker sends
// ---------------------------------------------------------------------------

func connected(serverVersion string, maxMessageSize int32) *pulsarpb.BaseCommand {
	c := &pulsarpb.CommandConnected{
		ServerVersion:   proto.String(serverVersion),
		ProtocolVersion: proto.Int32(21),
	}
	if maxMessageSize > 0 {
		c.MaxMessageSize = proto.Int32(maxMessageSize)
	}
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_CONNECTED.Enum(), Connected: c}
}

func authChallenge(method, data string) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_AUTH_CHALLENGE.Enum(),
		AuthChallenge: &pulsarpb.CommandAuthChallenge{
			ServerVersion:   proto.String("Pulsar-Server-test"),
			ProtocolVersion: proto.Int32(21),
			Challenge:       &pulsarpb.AuthData{AuthMethodName: proto.String(method), AuthData: []byte(data)},
		},
	}
}

func ping() *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PING.Enum(), Ping: &pulsarpb.CommandPing{}}
}

func pong() *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PONG.Enum(), Pong: &pulsarpb.CommandPong{}}
}

func success(id uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SUCCESS.Enum(),
		Success: &pulsarpb.CommandSuccess{RequestId: proto.Uint64(id)}}
}

func errorAnswer(id uint64, code pulsarpb.ServerError, msg string) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_ERROR.Enum(),
		Error: &pulsarpb.CommandError{RequestId: proto.Uint64(id), Error: code.Enum(), Message: proto.String(msg)}}
}

func producerSuccess(id uint64, name string, ready bool) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PRODUCER_SUCCESS.Enum(),
		ProducerSuccess: &pulsarpb.CommandProducerSuccess{
			RequestId: proto.Uint64(id), ProducerName: proto.String(name), ProducerReady: proto.Bool(ready)}}
}

func lookupConnect(id uint64, url string) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_LOOKUP_RESPONSE.Enum(),
		LookupTopicResponse: &pulsarpb.CommandLookupTopicResponse{
			RequestId:        proto.Uint64(id),
			Response:         pulsarpb.CommandLookupTopicResponse_Connect.Enum(),
			BrokerServiceUrl: proto.String(url),
			Authoritative:    proto.Bool(true),
		}}
}

func lookupRedirect(id uint64, url string) *pulsarpb.BaseCommand {
	c := lookupConnect(id, url)
	c.LookupTopicResponse.Response = pulsarpb.CommandLookupTopicResponse_Redirect.Enum()
	return c
}

func lookupFailed(id uint64, code pulsarpb.ServerError, msg string) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_LOOKUP_RESPONSE.Enum(),
		LookupTopicResponse: &pulsarpb.CommandLookupTopicResponse{
			RequestId: proto.Uint64(id),
			Response:  pulsarpb.CommandLookupTopicResponse_Failed.Enum(),
			Error:     code.Enum(),
			Message:   proto.String(msg),
		}}
}

func partitionsAnswer(id uint64, n uint32) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE.Enum(),
		PartitionMetadataResponse: &pulsarpb.CommandPartitionedTopicMetadataResponse{
			RequestId:  proto.Uint64(id),
			Partitions: proto.Uint32(n),
			Response:   pulsarpb.CommandPartitionedTopicMetadataResponse_Success.Enum(),
		}}
}

func partitionsFailed(id uint64, code pulsarpb.ServerError, msg string) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE.Enum(),
		PartitionMetadataResponse: &pulsarpb.CommandPartitionedTopicMetadataResponse{
			RequestId: proto.Uint64(id),
			Response:  pulsarpb.CommandPartitionedTopicMetadataResponse_Failed.Enum(),
			Error:     code.Enum(),
			Message:   proto.String(msg),
		}}
}

func lastMessageIDAnswer(id, ledger, entry uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID_RESPONSE.Enum(),
		GetLastMessageIdResponse: &pulsarpb.CommandGetLastMessageIdResponse{
			RequestId:     proto.Uint64(id),
			LastMessageId: &pulsarpb.MessageIdData{LedgerId: proto.Uint64(ledger), EntryId: proto.Uint64(entry)},
		}}
}

func ackAnswer(id, consumerID uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_ACK_RESPONSE.Enum(),
		AckResponse: &pulsarpb.CommandAckResponse{RequestId: proto.Uint64(id), ConsumerId: proto.Uint64(consumerID)}}
}

func ackFailed(id, consumerID uint64, code pulsarpb.ServerError, msg string) *pulsarpb.BaseCommand {
	c := ackAnswer(id, consumerID)
	c.AckResponse.Error = code.Enum()
	c.AckResponse.Message = proto.String(msg)
	return c
}

func sendReceipt(producerID, seq uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEND_RECEIPT.Enum(),
		SendReceipt: &pulsarpb.CommandSendReceipt{
			ProducerId: proto.Uint64(producerID), SequenceId: proto.Uint64(seq),
			MessageId: &pulsarpb.MessageIdData{LedgerId: proto.Uint64(7), EntryId: proto.Uint64(seq)}}}
}

func sendError(producerID, seq uint64, code pulsarpb.ServerError, msg string) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEND_ERROR.Enum(),
		SendError: &pulsarpb.CommandSendError{
			ProducerId: proto.Uint64(producerID), SequenceId: proto.Uint64(seq),
			Error: code.Enum(), Message: proto.String(msg)}}
}

func closeProducerPush(producerID uint64, url, urlTLS string) *pulsarpb.BaseCommand {
	c := &pulsarpb.CommandCloseProducer{ProducerId: proto.Uint64(producerID)}
	if url != "" {
		c.AssignedBrokerServiceUrl = proto.String(url)
	}
	if urlTLS != "" {
		c.AssignedBrokerServiceUrlTls = proto.String(urlTLS)
	}
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_CLOSE_PRODUCER.Enum(), CloseProducer: c}
}

func closeConsumerPush(consumerID uint64, url, urlTLS string) *pulsarpb.BaseCommand {
	c := &pulsarpb.CommandCloseConsumer{ConsumerId: proto.Uint64(consumerID)}
	if url != "" {
		c.AssignedBrokerServiceUrl = proto.String(url)
	}
	if urlTLS != "" {
		c.AssignedBrokerServiceUrlTls = proto.String(urlTLS)
	}
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_CLOSE_CONSUMER.Enum(), CloseConsumer: c}
}

func activeConsumerChange(consumerID uint64, active bool) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_ACTIVE_CONSUMER_CHANGE.Enum(),
		ActiveConsumerChange: &pulsarpb.CommandActiveConsumerChange{ConsumerId: proto.Uint64(consumerID), IsActive: proto.Bool(active)}}
}

func reachedEndOfTopic(consumerID uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_REACHED_END_OF_TOPIC.Enum(),
		ReachedEndOfTopic: &pulsarpb.CommandReachedEndOfTopic{ConsumerId: proto.Uint64(consumerID)}}
}

func topicMigrated(rt pulsarpb.CommandTopicMigrated_ResourceType, id uint64, url, urlTLS string) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_TOPIC_MIGRATED.Enum(),
		TopicMigrated: &pulsarpb.CommandTopicMigrated{
			ResourceType: rt.Enum(), ResourceId: proto.Uint64(id),
			BrokerServiceUrl: proto.String(url), BrokerServiceUrlTls: proto.String(urlTLS)}}
}

func messageCmd(consumerID, ledger, entry uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_MESSAGE.Enum(),
		Message: &pulsarpb.CommandMessage{
			ConsumerId: proto.Uint64(consumerID),
			MessageId:  &pulsarpb.MessageIdData{LedgerId: proto.Uint64(ledger), EntryId: proto.Uint64(entry)}}}
}

// messageFrame encodes a MESSAGE payload frame, with its CRC32C.
func messageFrame(t testing.TB, consumerID, entry uint64, payload string) []byte {
	t.Helper()
	b, err := frame.AppendMessage(nil, messageCmd(consumerID, 7, entry),
		&pulsarpb.MessageMetadata{
			ProducerName: proto.String("standalone-0-1"),
			SequenceId:   proto.Uint64(entry),
			PublishTime:  proto.Uint64(1_700_000_000_000),
		}, []byte(payload))
	require.NoError(t, err)
	return b
}

// ---------------------------------------------------------------------------
// Requests the client sends
// ---------------------------------------------------------------------------

func lookup(topic string) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_LOOKUP.Enum(),
		LookupTopic: &pulsarpb.CommandLookupTopic{Topic: proto.String(topic)}}
}

func partitionedMetadata(topic string) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
		PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{Topic: proto.String(topic)}}
}

func producerCmd(producerID uint64, topic string) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PRODUCER.Enum(),
		Producer: &pulsarpb.CommandProducer{ProducerId: proto.Uint64(producerID), Topic: proto.String(topic)}}
}

func subscribeCmd(consumerID uint64, topic, sub string) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SUBSCRIBE.Enum(),
		Subscribe: &pulsarpb.CommandSubscribe{
			ConsumerId: proto.Uint64(consumerID), Topic: proto.String(topic), Subscription: proto.String(sub),
			SubType: pulsarpb.CommandSubscribe_Exclusive.Enum()}}
}

func getLastMessageID(consumerID uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID.Enum(),
		GetLastMessageId: &pulsarpb.CommandGetLastMessageId{ConsumerId: proto.Uint64(consumerID)}}
}

func ackCmd(consumerID, ledger, entry uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_ACK.Enum(),
		Ack: &pulsarpb.CommandAck{
			ConsumerId: proto.Uint64(consumerID),
			AckType:    pulsarpb.CommandAck_Individual.Enum(),
			MessageId:  []*pulsarpb.MessageIdData{{LedgerId: proto.Uint64(ledger), EntryId: proto.Uint64(entry)}}}}
}

func unsubscribeCmd(consumerID uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_UNSUBSCRIBE.Enum(),
		Unsubscribe: &pulsarpb.CommandUnsubscribe{ConsumerId: proto.Uint64(consumerID)}}
}

func flowCmd(consumerID uint64, permits uint32) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_FLOW.Enum(),
		Flow: &pulsarpb.CommandFlow{ConsumerId: proto.Uint64(consumerID), MessagePermits: proto.Uint32(permits)}}
}

// requestID reads the request id of a written command.
func requestID(t testing.TB, cmd *pulsarpb.BaseCommand) uint64 {
	t.Helper()
	id, ok := frame.RequestID(cmd)
	require.True(t, ok, "%v carries no request id", cmd.GetType())
	return id
}
