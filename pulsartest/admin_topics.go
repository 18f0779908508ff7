package pulsartest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// The topic endpoints of the admin API:
// /admin/v2/{persistent,non-persistent}/{tenant}/{namespace}[/{topic}[/...]].

func (h *adminHandler) topicsRoute(q *adminRequest) *answer {
	seg := q.seg
	s := h.store()
	if len(seg) < 5 {
		return nil
	}
	domain, ns := seg[2], seg[3]+"/"+seg[4]
	if len(seg) == 5 {
		return method(q, map[string]func() answer{"GET": func() answer {
			if !s.namespaceExistsLocked(ns) {
				return fail(http.StatusNotFound, "Namespace does not exist")
			}
			return okJSON(nonNil(s.namespaceTopicsLocked(ns, domain)))
		}})
	}
	if len(seg) == 6 && seg[5] == "partitioned" && q.r.Method == http.MethodGet {
		if !s.namespaceExistsLocked(ns) {
			a := fail(http.StatusNotFound, "Namespace does not exist")
			return &a
		}
		var out []string
		for name := range s.partitions {
			if d, rest, _ := strings.Cut(name, "://"); d == domain && strings.HasPrefix(rest, ns+"/") {
				out = append(out, name)
			}
		}
		slices.Sort(out)
		a := okJSON(nonNil(out))
		return &a
	}
	name, partition, valid := parseTopic(domain + "://" + ns + "/" + seg[5])
	if !valid {
		a := fail(http.StatusPreconditionFailed, "Topic name is not valid")
		return &a
	}
	tp := &topicReq{h: h, q: q, s: s, name: name, partition: partition, ns: ns}
	switch len(seg) {
	case 6:
		return method(q, map[string]func() answer{"PUT": tp.create, "DELETE": tp.delete})
	case 7:
		switch seg[6] {
		case "partitions":
			return method(q, map[string]func() answer{
				"GET": tp.metadata, "PUT": tp.createPartitioned, "POST": tp.updatePartitions, "DELETE": tp.deletePartitioned,
			})
		case "subscriptions":
			return method(q, map[string]func() answer{"GET": tp.subscriptions})
		case "stats":
			return method(q, map[string]func() answer{"GET": tp.stats})
		case "partitioned-stats":
			return method(q, map[string]func() answer{"GET": tp.partitionedStats})
		case "unload":
			return method(q, map[string]func() answer{"PUT": tp.unload})
		case "terminate":
			return method(q, map[string]func() answer{"POST": tp.terminate})
		case "publishRate":
			// Taken and forgotten: the fake does not throttle.
			return method(q, map[string]func() answer{"POST": tp.policy, "DELETE": tp.policy})
		}
	case 8:
		if seg[6] == "subscription" {
			tp.sub = seg[7]
			return method(q, map[string]func() answer{"PUT": tp.createSubscription, "DELETE": tp.deleteSubscription})
		}
	case 10:
		if seg[6] == "ledger" && seg[8] == "entry" {
			return method(q, map[string]func() answer{"GET": func() answer { return tp.entry(seg[7], seg[9]) }})
		}
		if seg[6] == "subscription" && seg[8] == "resetcursor" {
			tp.sub = seg[7]
			return method(q, map[string]func() answer{"POST": func() answer { return tp.resetCursorByTime(seg[9]) }})
		}
	case 9:
		if seg[6] == "subscription" && seg[8] == "resetcursor" {
			tp.sub = seg[7]
			return method(q, map[string]func() answer{"POST": tp.resetCursorByID})
		}
	}
	return nil
}

// topicReq is a request about one topic.
type topicReq struct {
	h         *adminHandler
	q         *adminRequest
	s         *Server
	name      string // full name
	partition int32
	ns        string
	sub       string
}

func topicNotFound(name string) answer {
	return fail(http.StatusNotFound, "Topic "+name+" not found")
}

// partitionsOf returns the names of the topics an operation on a
// partitioned topic applies to (its partitions), or the topic itself.
func (tp *topicReq) partitionsOf() []string {
	n := tp.s.partitions[tp.name]
	if n == 0 {
		return []string{tp.name}
	}
	out := make([]string, n)
	for i := range n {
		out[i] = partitionName(tp.name, i)
	}
	return out
}

// existsLocked reports whether the topic exists as a topic or as a
// partitioned topic.
func (tp *topicReq) exists() bool {
	return tp.s.topics[tp.name] != nil || tp.s.partitions[tp.name] > 0
}

func (tp *topicReq) create() answer {
	if !tp.s.namespaceExistsLocked(tp.ns) {
		return fail(http.StatusNotFound, "Namespace not found")
	}
	if tp.s.knownLocked(tp.name) {
		return fail(http.StatusConflict, "This topic already exists")
	}
	tp.s.topicLocked(tp.name, tp.partition)
	tp.s.changedLocked()
	return noContent()
}

// clientsLocked counts the producers and consumers attached to topics.
func (s *Server) clientsLocked(names []string) (producers, consumers int) {
	for _, name := range names {
		t := s.topics[name]
		if t == nil {
			continue
		}
		producers += len(t.producers) + len(t.waiting)
		for _, sub := range t.subs {
			consumers += len(sub.consumers)
		}
	}
	return producers, consumers
}

// deleteTopicsLocked deletes topics; with force, their producers and
// consumers are closed first (CLOSE_PRODUCER, CLOSE_CONSUMER), else any
// attached refuses the deletion.
func (tp *topicReq) deleteTopicsLocked(names []string) (answer, bool) {
	p, c := tp.s.clientsLocked(names)
	if p+c > 0 && !tp.q.force() {
		return fail(http.StatusPreconditionFailed, fmt.Sprintf(
			"Topic has %d clients connected Including %d consumers, %d producers, and 0 replicators.", p+c, c, p)), false
	}
	for _, name := range names {
		if tp.s.topics[name] == nil {
			continue
		}
		tp.s.closeTopicClientsLocked(name, "", "", nil)
		delete(tp.s.topics, name)
		delete(tp.s.adminMetaLocked().terminated, name)
	}
	tp.s.changedLocked()
	return noContent(), true
}

func (tp *topicReq) delete() answer {
	if tp.s.partitions[tp.name] > 0 {
		return fail(http.StatusConflict, tp.name+" is a partitioned topic, instead of calling delete topic, please call delete-partitioned-topic.")
	}
	if tp.s.topics[tp.name] == nil {
		return topicNotFound(tp.name)
	}
	a, _ := tp.deleteTopicsLocked([]string{tp.name})
	return a
}

// readCount reads the body of a partitions request: a JSON number, or
// the partitioned topic metadata {"partitions": N} admin clients send.
func (tp *topicReq) readCount() (int, *answer) {
	var n int
	if err := json.Unmarshal(tp.q.body, &n); err != nil {
		var md struct {
			Partitions *int `json:"partitions"`
		}
		if err2 := json.Unmarshal(tp.q.body, &md); err2 != nil || md.Partitions == nil {
			a := badJSON(err)
			return 0, &a
		}
		n = *md.Partitions
	}
	return n, nil
}

// partitionedMetadata is a partitioned topic's metadata, as the admin API
// answers it.
type partitionedMetadata struct {
	Partitions int  `json:"partitions"`
	Deleted    bool `json:"deleted"`
}

func (tp *topicReq) metadata() answer {
	n := tp.s.partitions[tp.name]
	if n == 0 && tp.s.topics[tp.name] == nil {
		auto := tp.q.query("checkAllowAutoCreation") == "true" && !tp.s.cfg.ext.noAutoCreate
		if !auto {
			return topicNotFound(tp.name)
		}
	}
	return okJSON(partitionedMetadata{Partitions: n})
}

func (tp *topicReq) createPartitioned() answer {
	n, bad := tp.readCount()
	if bad != nil {
		return *bad
	}
	if n <= 0 {
		return fail(http.StatusNotAcceptable, "Number of partitions should be more than 0")
	}
	if !tp.s.namespaceExistsLocked(tp.ns) {
		return fail(http.StatusNotFound, "Namespace not found")
	}
	if tp.exists() {
		return fail(http.StatusConflict, "This topic already exists")
	}
	tp.s.setPartitionsLocked(tp.name, n)
	return noContent()
}

// setPartitionsLocked makes a topic partitioned in n partitions; those of
// a persistent topic are created, as a broker creates them eagerly.
func (s *Server) setPartitionsLocked(name string, n int) {
	s.partitions[name] = n
	if strings.HasPrefix(name, "persistent://") {
		for i := range n {
			s.topicLocked(partitionName(name, i), int32(i))
		}
	}
	s.changedLocked()
}

func (tp *topicReq) updatePartitions() answer {
	n, bad := tp.readCount()
	if bad != nil {
		return *bad
	}
	cur := tp.s.partitions[tp.name]
	if cur == 0 {
		return fail(http.StatusConflict, "Topic "+tp.name+" is not the partitioned topic.")
	}
	if n < cur {
		return fail(http.StatusUnprocessableEntity, fmt.Sprintf("Desired partitions %d can't be less than the current partitions %d.", n, cur))
	}
	tp.s.setPartitionsLocked(tp.name, n)
	return noContent()
}

func (tp *topicReq) deletePartitioned() answer {
	n := tp.s.partitions[tp.name]
	if n == 0 {
		if tp.s.topics[tp.name] != nil {
			return fail(http.StatusConflict, tp.name+" is a non-partitioned topic. Instead of calling delete-partitioned-topic please call delete.")
		}
		return fail(http.StatusNotFound, "Topic "+tp.name+" not found.")
	}
	a, deleted := tp.deleteTopicsLocked(tp.partitionsOf())
	if deleted {
		delete(tp.s.partitions, tp.name)
	}
	return a
}

func (tp *topicReq) subscriptions() answer {
	if !tp.exists() {
		return topicNotFound(tp.name)
	}
	out := []string{}
	for _, name := range tp.partitionsOf() {
		if t := tp.s.topics[name]; t != nil {
			for sub := range t.subs {
				if !slices.Contains(out, sub) {
					out = append(out, sub)
				}
			}
		}
	}
	slices.Sort(out)
	return okJSON(out)
}

// messageID is a message id as the admin API reads it.
type messageID struct {
	LedgerID       *int64 `json:"ledgerId"`
	EntryID        *int64 `json:"entryId"`
	PartitionIndex *int32 `json:"partitionIndex"`
	IsExcluded     bool   `json:"isExcluded"`
}

// positionOf turns an id from the admin API into an entry of t, as
// position does for the wire's.
func (id messageID) positionOf(t *topic) uint64 {
	ledger, entry := int64(-1), int64(-1)
	if id.LedgerID != nil {
		ledger = *id.LedgerID
	}
	if id.EntryID != nil {
		entry = *id.EntryID
	}
	p := position(t, &pulsarpb.MessageIdData{LedgerId: ptr(uint64(ledger)), EntryId: ptr(uint64(entry))})
	if id.IsExcluded && p < uint64(len(t.entries)) {
		p++
	}
	return p
}

func ptr[T any](v T) *T { return &v }

func (tp *topicReq) createSubscription() answer {
	if !tp.s.namespaceExistsLocked(tp.ns) {
		return fail(http.StatusNotFound, "Namespace not found")
	}
	var at *messageID
	if len(tp.q.body) > 0 {
		if err := json.Unmarshal(tp.q.body, &at); err != nil {
			return badJSON(err)
		}
	}
	names := tp.partitionsOf()
	for _, name := range names {
		if t := tp.s.topics[name]; t != nil && t.subs[tp.sub] != nil {
			return fail(http.StatusConflict, "Subscription already exists for topic")
		}
	}
	for _, name := range names {
		_, partition, _ := parseTopic(name)
		t := tp.s.topicLocked(name, partition)
		start := uint64(len(t.entries)) // latest, the default
		if at != nil {
			start = at.positionOf(t)
		}
		newSubscription(t, tp.sub, true, start)
	}
	tp.s.changedLocked()
	return noContent()
}

// subscriptionsLocked returns the subscription of the request on each
// topic it applies to, or the broker's answer when the topic or the
// subscription does not exist.
func (tp *topicReq) subscriptionsLocked() ([]*subscription, *answer) {
	if !tp.exists() {
		a := topicNotFound(tp.name)
		return nil, &a
	}
	var subs []*subscription
	for _, name := range tp.partitionsOf() {
		if t := tp.s.topics[name]; t != nil && t.subs[tp.sub] != nil {
			subs = append(subs, t.subs[tp.sub])
		}
	}
	if len(subs) == 0 {
		a := fail(http.StatusNotFound, "Subscription "+tp.sub+" not found for topic "+tp.name)
		return nil, &a
	}
	return subs, nil
}

func (tp *topicReq) deleteSubscription() answer {
	subs, bad := tp.subscriptionsLocked()
	if bad != nil {
		return *bad
	}
	if !tp.q.force() {
		for _, sub := range subs {
			if len(sub.consumers) > 0 {
				return fail(http.StatusPreconditionFailed, "Subscription has active connected consumers")
			}
		}
	}
	for _, sub := range subs {
		tp.s.disconnectConsumersLocked(sub)
		delete(sub.topic.subs, sub.name)
	}
	tp.s.changedLocked()
	return noContent()
}

// disconnectConsumersLocked detaches the consumers of sub and pushes
// CLOSE_CONSUMER to each, as a broker does before it resets or deletes
// a subscription. The subscription survives.
func (s *Server) disconnectConsumersLocked(sub *subscription) {
	sub.seeking = true // a non-durable subscription outlives them
	for _, cons := range slices.Backward(slices.Clone(sub.consumers)) {
		s.removeConsumerLocked(cons)
		_ = cons.conn.Send(closeConsumer(cons.id, "", ""))
	}
	sub.seeking = false
}

// resetLocked moves sub's cursor to entry target, for SEEK and the admin
// API's reset cursor: every
// consumer is disconnected first, and everything before target counts as
// acknowledged, everything from it as not.
func (s *Server) resetLocked(sub *subscription, target uint64) {
	s.disconnectConsumersLocked(sub)
	sub.next = target
	sub.markDelete = target
	clear(sub.acked)
	clear(sub.pending)
	clear(sub.redeliveries)
	clear(sub.ackSets)
	sub.redeliver = nil
	sub.delayed = nil // held messages are read again from target
	s.armDelayLocked(sub)
	s.changedLocked()
}

func (tp *topicReq) resetCursorByTime(ts string) answer {
	when, err := strconv.ParseUint(ts, 10, 64)
	if err != nil {
		return answer{code: http.StatusNotFound, raw: []byte{}, ctype: "text/plain"}
	}
	subs, bad := tp.subscriptionsLocked()
	if bad != nil {
		return *bad
	}
	for _, sub := range subs {
		t := sub.topic
		target := uint64(len(t.entries))
		for _, e := range t.entries {
			if e.publishTime >= when {
				target = e.id
				break
			}
		}
		tp.s.resetLocked(sub, target)
	}
	return noContent()
}

func (tp *topicReq) resetCursorByID() answer {
	var id *messageID
	if len(tp.q.body) > 0 {
		if err := json.Unmarshal(tp.q.body, &id); err != nil {
			return badJSON(err)
		}
	}
	if id == nil {
		return fail(http.StatusInternalServerError, "ResetCursorData is null")
	}
	subs, bad := tp.subscriptionsLocked()
	if bad != nil {
		return *bad
	}
	for _, sub := range subs {
		if id.PartitionIndex != nil && *id.PartitionIndex >= 0 && sub.topic.partition >= 0 && *id.PartitionIndex != sub.topic.partition {
			continue
		}
		tp.s.resetLocked(sub, id.positionOf(sub.topic))
	}
	return noContent()
}

func (tp *topicReq) unload() answer {
	if !tp.exists() {
		return topicNotFound(tp.name)
	}
	for _, name := range tp.partitionsOf() {
		tp.h.unloadLocked(name)
	}
	return noContent()
}

func (tp *topicReq) stats() answer {
	t := tp.s.topics[tp.name]
	if t == nil {
		return topicNotFound(tp.name)
	}
	return okJSON(tp.s.topicStatsLocked(t, tp.q.r.Host))
}

func (tp *topicReq) partitionedStats() answer {
	n := tp.s.partitions[tp.name]
	if n == 0 {
		return fail(http.StatusNotFound, "Partitioned Topic "+tp.name+" not found")
	}
	var parts []map[string]any
	perPartition := map[string]any{}
	for _, name := range tp.partitionsOf() {
		if t := tp.s.topics[name]; t != nil {
			st := tp.s.topicStatsLocked(t, tp.q.r.Host)
			parts = append(parts, st)
			perPartition[name] = st
		}
	}
	st := sumStats(parts)
	st["metadata"] = partitionedMetadata{Partitions: n}
	if tp.q.query("perPartition") != "false" {
		st["partitions"] = perPartition
	}
	return okJSON(st)
}

// entry answers GET .../ledger/{ledger}/entry/{entry}: the stored payload
// of one entry (a batch whole), with the X-Pulsar-* headers a broker sets
// for admin clients to split it.
func (tp *topicReq) entry(ledger, entryID string) answer {
	t := tp.s.topics[tp.name]
	if t == nil {
		return topicNotFound(tp.name)
	}
	l, err1 := strconv.ParseUint(ledger, 10, 64)
	e, err2 := strconv.ParseUint(entryID, 10, 64)
	if err1 != nil || err2 != nil || l != t.ledgerID || e >= uint64(len(t.entries)) {
		return fail(http.StatusNotFound, "Message id not found")
	}
	en := t.entries[e]
	var md pulsarpb.MessageMetadata
	_ = proto.Unmarshal(en.metadata, &md)
	props := map[string]string{}
	for _, kv := range md.GetProperties() {
		props[kv.GetKey()] = kv.GetValue()
	}
	h := map[string]string{
		"X-Pulsar-Message-ID":   fmt.Sprintf("%d:%d", l, e),
		"X-Pulsar-Publish-Time": strconv.FormatUint(md.GetPublishTime(), 10),
	}
	if len(props) > 0 {
		b, _ := json.Marshal(props)
		h["X-Pulsar-Property"] = string(b)
	}
	if en.batched {
		h["X-Pulsar-Num-Batch-Message"] = strconv.Itoa(int(en.numMessages))
	}
	return answer{code: http.StatusOK, raw: append([]byte{}, en.payload...), ctype: "application/octet-stream", header: h}
}

// policy answers the setting of a topic policy the fake takes and
// forgets (it does not throttle): 204 on a topic that exists.
func (tp *topicReq) policy() answer {
	if !tp.exists() {
		return topicNotFound(tp.name)
	}
	return noContent()
}

// terminate terminates a topic as a broker does: its producers get
// CLOSE_PRODUCER, and a PRODUCER for it is refused from then on
// (TopicTerminatedError); its consumers that have read everything get
// REACHED_END_OF_TOPIC. It answers the id of the last message.
func (tp *topicReq) terminate() answer {
	t := tp.s.topics[tp.name]
	if t == nil {
		return topicNotFound(tp.name)
	}
	m := tp.s.adminMetaLocked()
	if m.terminated == nil {
		m.terminated = map[string]bool{}
	}
	m.terminated[tp.name] = true
	producers := slices.Clone(t.waiting)
	for p := range t.producers {
		producers = append(producers, p)
	}
	for _, p := range producers {
		tp.s.pushCloseProducerLocked(p, "", "")
	}
	for _, sub := range t.subs {
		if sub.next < uint64(len(t.entries)) || len(sub.redeliver) > 0 {
			continue
		}
		for _, cons := range sub.consumers {
			_ = cons.conn.Send(&pulsarpb.BaseCommand{
				Type:              pulsarpb.BaseCommand_REACHED_END_OF_TOPIC.Enum(),
				ReachedEndOfTopic: &pulsarpb.CommandReachedEndOfTopic{ConsumerId: proto.Uint64(cons.id)},
			})
		}
	}
	tp.s.changedLocked()
	return okJSON(map[string]any{
		"ledgerId": t.ledgerID, "entryId": int64(len(t.entries)) - 1, "partitionIndex": t.partition,
		"batchIndex": -1, "batchSize": 0,
	})
}

// refuseTerminatedLocked answers a PRODUCER for a terminated topic with
// the broker's ERROR, and reports whether it did.
func (s *Server) refuseTerminatedLocked(c *Conn, cmd *pulsarpb.BaseCommand) bool {
	if cmd.GetType() != pulsarpb.BaseCommand_PRODUCER {
		return false
	}
	name, _, ok := parseTopic(cmd.GetProducer().GetTopic())
	if !ok || !s.adminMetaLocked().terminated[name] {
		return false
	}
	_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_TopicTerminatedError,
		"org.apache.pulsar.broker.service.BrokerServiceException$TopicTerminatedException: Topic was already terminated"))
	return true
}
