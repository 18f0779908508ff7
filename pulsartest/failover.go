package pulsartest

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// DefaultActiveConsumerFailoverDelay is how long after the active consumer
// of a Failover subscription changes the server tells the consumers: a
// broker's activeConsumerFailoverDelayTimeMillis default.
const DefaultActiveConsumerFailoverDelay = time.Second

// WithActiveConsumerFailoverDelay sets how long after the active consumer
// of a Failover subscription changes the server sends ACTIVE_CONSUMER_CHANGE
// to its consumers (a broker's activeConsumerFailoverDelayTimeMillis), on
// the server's clock; 0 sends them at once, right after the SUCCESS of the
// SUBSCRIBE that made the change. Default:
// DefaultActiveConsumerFailoverDelay.
func WithActiveConsumerFailoverDelay(d time.Duration) Option {
	return func(c *config) { c.failoverDelay = max(d, 0) }
}

// failoverState is what a Failover subscription keeps about its active
// consumer: the ACTIVE_CONSUMER_CHANGE notification waiting for the delay.
type failoverState struct {
	timer Timer
}

// active is the consumer a Failover (or Exclusive) subscription delivers
// to. As on a broker, for a partition of a partitioned topic the consumers
// are ordered by priority level, then name, and partition i goes to
// consumer i modulo the number of those with the highest priority, so that
// the partitions spread over the consumers. (On a non-partitioned topic a
// broker picks by a hash ring of the consumer names; here the first
// attached stays active.)
func (sub *subscription) active() *consumer {
	if len(sub.consumers) == 0 {
		return nil
	}
	p := sub.topic.partition
	if sub.subType != pulsarpb.CommandSubscribe_Failover || p < 0 {
		return sub.consumers[0]
	}
	sorted := slices.Clone(sub.consumers)
	slices.SortStableFunc(sorted, func(a, b *consumer) int {
		return cmp.Or(
			cmp.Compare(a.joined.GetPriorityLevel(), b.joined.GetPriorityLevel()),
			strings.Compare(a.joined.GetConsumerName(), b.joined.GetConsumerName()))
	})
	n := 1
	for n < len(sorted) && sorted[n].joined.GetPriorityLevel() == sorted[0].joined.GetPriorityLevel() {
		n++
	}
	return sorted[int(p)%n]
}

// failoverJoinedLocked is called when cons has joined a Failover
// subscription whose active consumer was prev, before SUCCESS is sent. If
// the active consumer stays the same, cons is told at once that it is
// inactive — before the SUCCESS, as a broker does, so that a client that
// registers its consumer only on SUCCESS misses it, as it would with a
// broker. It reports whether the active consumer changed, in which case
// failoverChangedLocked must follow the SUCCESS.
func (s *Server) failoverJoinedLocked(sub *subscription, cons, prev *consumer) bool {
	if sub.subType != pulsarpb.CommandSubscribe_Failover {
		return false
	}
	if sub.active() == prev {
		_ = cons.conn.Send(activeConsumerChange(cons.id, false))
		return false
	}
	return true
}

// failoverChangedLocked tells every consumer of a Failover subscription
// whether it is the active one, after the failover delay (again from the
// start if another change comes first), as a broker does when the active
// consumer changed.
func (s *Server) failoverChangedLocked(sub *subscription) {
	if sub.failover.timer != nil {
		sub.failover.timer.Stop()
		sub.failover.timer = nil
	}
	if s.cfg.failoverDelay == 0 {
		s.notifyActiveLocked(sub)
		return
	}
	var timer Timer
	timer = s.x.clock.AfterFunc(s.cfg.failoverDelay, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed || sub.failover.timer != timer {
			return
		}
		sub.failover.timer = nil
		s.notifyActiveLocked(sub)
	})
	sub.failover.timer = timer
}

func (s *Server) notifyActiveLocked(sub *subscription) {
	active := sub.active()
	for _, cons := range sub.consumers {
		_ = cons.conn.Send(activeConsumerChange(cons.id, cons == active))
	}
}
