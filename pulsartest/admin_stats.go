package pulsartest

import (
	"maps"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Topic statistics, as the admin API's /stats answers them: the fields a
// broker reports that the fake can know (counters, backlogs, producers,
// subscriptions and consumers). Rates are always 0: the fake keeps no
// clock-based averages.

func (s *Server) topicStatsLocked(t *topic, host string) map[string]any {
	// A broker counts the bytes of each entry as stored: the checksum
	// (magic and CRC32C, which clients send), the metadata size, the
	// metadata and the payload.
	var bytesIn, lastPublish uint64
	for _, e := range t.entries {
		bytesIn += uint64(2 + 4 + 4 + len(e.metadata) + len(e.payload))
		lastPublish = e.publishTime
	}
	publishers := []any{}
	for p := range t.producers {
		publishers = append(publishers, publisherStats(p))
	}
	subs := map[string]any{}
	for name, sub := range t.subs {
		subs[name] = subscriptionStats(t, sub)
	}
	return map[string]any{
		"msgRateIn": 0.0, "msgThroughputIn": 0.0, "msgRateOut": 0.0, "msgThroughputOut": 0.0,
		"bytesInCounter":                     bytesIn,
		"msgInCounter":                       t.messages,
		"bytesOutCounter":                    0,
		"msgOutCounter":                      0,
		"averageMsgSize":                     0.0, // a rate, as the broker computes it
		"msgChunkPublished":                  false,
		"storageSize":                        bytesIn,
		"backlogSize":                        0,
		"earliestMsgPublishTimeInBacklogs":   0,
		"offloadedStorageSize":               0,
		"publishers":                         publishers,
		"waitingPublishers":                  len(t.waiting),
		"subscriptions":                      subs,
		"replication":                        map[string]any{},
		"deduplicationStatus":                "Disabled",
		"nonContiguousDeletedMessagesRanges": 0,
		"ownerBroker":                        host,
		"lastPublishTimeStamp":               lastPublish,
	}
}

func publisherStats(p *producer) map[string]any {
	md := map[string]string{}
	for _, kv := range p.metadata {
		md[kv.GetKey()] = kv.GetValue()
	}
	st := map[string]any{
		"accessMode":              accessModeName(p.mode),
		"msgRateIn":               0.0,
		"msgThroughputIn":         0.0,
		"averageMsgSize":          0.0,
		"producerId":              p.id,
		"producerName":            p.name,
		"supportsPartialProducer": false,
		"address":                 "/" + p.conn.RemoteAddr().String(),
		"clientVersion":           p.conn.connect.GetClientVersion(),
		"metadata":                md,
	}
	return st
}

func accessModeName(m pulsarpb.ProducerAccessMode) string {
	switch m {
	case pulsarpb.ProducerAccessMode_Exclusive:
		return "Exclusive"
	case pulsarpb.ProducerAccessMode_WaitForExclusive:
		return "WaitForExclusive"
	case pulsarpb.ProducerAccessMode_ExclusiveWithFencing:
		return "ExclusiveWithFencing"
	}
	return "Shared"
}

func subscriptionStats(t *topic, sub *subscription) map[string]any {
	typ := "None" // a broker's type of a subscription without consumers
	if len(sub.consumers) > 0 {
		typ = sub.subType.String()
	}
	unacked := map[*consumer]int{}
	for _, cons := range sub.pending {
		unacked[cons]++
	}
	consumers := []any{}
	for _, cons := range sub.consumers {
		md := map[string]string{}
		for _, kv := range cons.metadata {
			md[kv.GetKey()] = kv.GetValue()
		}
		consumers = append(consumers, map[string]any{
			"consumerName": cons.name,
			"msgRateOut":   0.0, "msgThroughputOut": 0.0, "msgRateRedeliver": 0.0,
			"availablePermits":             cons.permits,
			"unackedMessages":              unacked[cons],
			"blockedConsumerOnUnackedMsgs": false,
			"address":                      "/" + cons.conn.RemoteAddr().String(),
			"clientVersion":                cons.conn.connect.GetClientVersion(),
			"metadata":                     md,
		})
	}
	backlog := len(t.entries) - int(sub.markDelete) - len(sub.acked)
	return map[string]any{
		"msgRateOut": 0.0, "msgThroughputOut": 0.0, "msgRateRedeliver": 0.0,
		"bytesOutCounter":                  0,
		"msgOutCounter":                    0,
		"msgBacklog":                       backlog,
		"msgBacklogNoDelayed":              backlog,
		"backlogSize":                      0,
		"blockedSubscriptionOnUnackedMsgs": false,
		"msgDelayed":                       0,
		"unackedMessages":                  len(sub.pending),
		"type":                             typ,
		"consumers":                        consumers,
		"isDurable":                        sub.durable,
		"durable":                          sub.durable,
		"isReplicated":                     false,
		"replicated":                       false,
		"subscriptionProperties":           map[string]string{},
	}
}

// sumStats aggregates the statistics of partitions as a broker's
// partitioned-stats does: counters and backlogs add up, publishers and
// consumers are listed together, subscriptions merged by name.
func sumStats(parts []map[string]any) map[string]any {
	out := map[string]any{}
	if len(parts) == 0 {
		return map[string]any{"publishers": []any{}, "subscriptions": map[string]any{}}
	}
	maps.Copy(out, parts[0])
	delete(out, "ownerBroker")
	for _, k := range []string{"bytesInCounter", "msgInCounter", "storageSize", "waitingPublishers"} {
		out[k] = 0
	}
	var pubs []any
	subs := map[string]any{}
	for _, p := range parts {
		out["bytesInCounter"] = toInt(out["bytesInCounter"]) + toInt(p["bytesInCounter"])
		out["msgInCounter"] = toInt(out["msgInCounter"]) + toInt(p["msgInCounter"])
		out["storageSize"] = toInt(out["storageSize"]) + toInt(p["storageSize"])
		out["waitingPublishers"] = toInt(out["waitingPublishers"]) + toInt(p["waitingPublishers"])
		pubs = append(pubs, p["publishers"].([]any)...)
		for name, v := range p["subscriptions"].(map[string]any) {
			st := v.(map[string]any)
			prev, seen := subs[name].(map[string]any)
			if !seen {
				subs[name] = maps.Clone(st)
				continue
			}
			for _, k := range []string{"msgBacklog", "msgBacklogNoDelayed", "unackedMessages"} {
				prev[k] = toInt(prev[k]) + toInt(st[k])
			}
			prev["consumers"] = append(slicesClone(prev["consumers"].([]any)), st["consumers"].([]any)...)
		}
	}
	if pubs == nil {
		pubs = []any{}
	}
	out["publishers"] = pubs
	out["subscriptions"] = subs
	return out
}

func slicesClone(a []any) []any { return append([]any(nil), a...) }

func toInt(v any) int64 {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int64:
		return x
	case uint64:
		return int64(x)
	}
	return 0
}
