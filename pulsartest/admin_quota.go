package pulsartest

import (
	"encoding/json"
	"strconv"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Backlog quotas set through the admin API (destination_storage, by
// namespace) are enforced for the policies producer_request_hold and
// producer_exception, in the way a broker's quota check does it, but at
// once rather than every backlogQuotaCheckIntervalInSeconds: once a
// topic's backlog (the bytes of the entries stored after the slowest
// durable subscription's mark-delete position) is over the limit, the next SEND
// of a producer gets CLOSE_PRODUCER instead of a receipt (the client
// sends it again once reattached), and PRODUCER is refused with
// ProducerBlockedQuotaExceededError (request_hold: the client retries)
// or ProducerBlockedQuotaExceededException (exception: it gives up).
// consumer_backlog_eviction is not enforced.

// backlogQuota is a quota as the admin API takes it: "limit" (older
// clients, a number or a string of one) or "limitSize", and "policy".
type backlogQuota struct {
	Limit     json.RawMessage `json:"limit"`
	LimitSize *int64          `json:"limitSize"`
	Policy    string          `json:"policy"`
}

// limit is the quota's size limit in bytes, or -1 for none.
func (q backlogQuota) limit() int64 {
	if q.LimitSize != nil {
		return *q.LimitSize
	}
	var n int64
	if err := json.Unmarshal(q.Limit, &n); err == nil {
		return n
	}
	var s string
	if err := json.Unmarshal(q.Limit, &s); err == nil {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	}
	return -1
}

// quotaExceededLocked returns the error a producer of a topic (a full
// name) gets while its namespace's storage quota is exceeded, and false
// when it is not (or is not enforced).
func (s *Server) quotaExceededLocked(name string) (pulsarpb.ServerError, bool) {
	ns, ok := namespaceOf(name)
	if !ok {
		return 0, false
	}
	raw := s.adminMetaLocked().quotas[ns]["destination_storage"]
	if raw == nil {
		return 0, false
	}
	var q backlogQuota
	if json.Unmarshal(raw, &q) != nil {
		return 0, false
	}
	var code pulsarpb.ServerError
	switch q.Policy {
	case "producer_request_hold":
		code = pulsarpb.ServerError_ProducerBlockedQuotaExceededError
	case "producer_exception":
		code = pulsarpb.ServerError_ProducerBlockedQuotaExceededException
	default:
		return 0, false
	}
	limit := q.limit()
	t := s.topics[name]
	if limit < 0 || t == nil {
		return 0, false
	}
	from := uint64(len(t.entries))
	for _, sub := range t.subs {
		if sub.durable {
			from = min(from, sub.markDelete)
		}
	}
	var backlog int64
	for _, e := range t.entries[from:] {
		backlog += int64(10 + len(e.metadata) + len(e.payload)) // as stored; see topicStatsLocked
	}
	return code, backlog > limit
}

// quotaGateLocked enforces the quotas on SEND and PRODUCER (see above);
// it reports whether it answered the command.
func (s *Server) quotaGateLocked(c *Conn, cmd *pulsarpb.BaseCommand) bool {
	m := s.adminMetaLocked()
	if len(m.quotas) == 0 {
		return false
	}
	switch cmd.GetType() {
	case pulsarpb.BaseCommand_SEND:
		p := c.producers[cmd.GetSend().GetProducerId()]
		if p == nil || !p.ready {
			return false
		}
		if _, exceeded := s.quotaExceededLocked(p.topic.name); exceeded {
			s.pushCloseProducerLocked(p, "", "")
			return true
		}
	case pulsarpb.BaseCommand_PRODUCER:
		name, _, ok := parseTopic(cmd.GetProducer().GetTopic())
		if !ok {
			return false
		}
		if code, exceeded := s.quotaExceededLocked(name); exceeded {
			_ = c.Send(errorAnswer(cmd, code, "Cannot create producer on topic with backlog quota exceeded"))
			return true
		}
	}
	return false
}
