package pulsartest

import (
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// This file holds the state and the hooks behind the cluster, the declared
// faults and the inspection API (cluster.go, faults.go, inspect.go): the
// handlers call the hooks at a few well-defined points, and know nothing
// more of them.

// DefaultRecordLimit is how many records each log of a server keeps by
// default (frames, deliveries, acknowledgements): the most recent ones.
const DefaultRecordLimit = 10000

// extConfig is the part of config the options of this file and of
// clock.go, cluster.go and faults.go set.
type extConfig struct {
	clock        Clock
	seedTopics   []string
	seedParts    map[string]int
	noAutoCreate bool
	recordLimit  int
	limitSet     bool
	proxy        bool
}

// WithTopics creates topics when the server starts (short names are
// normalised: "t" is "persistent://public/default/t"); invalid names are
// ignored. Useful with WithAutoCreateTopics(false). Default: none.
func WithTopics(topics ...string) Option {
	return func(c *config) { c.ext.seedTopics = append(c.ext.seedTopics, topics...) }
}

// WithPartitionedTopic makes topic a partitioned topic of n partitions,
// as SetPartitions does, and creates its partitions
// ("<topic>-partition-0" to "-partition-<n-1>"). Default: none.
func WithPartitionedTopic(topic string, n int) Option {
	return func(c *config) {
		if c.ext.seedParts == nil {
			c.ext.seedParts = make(map[string]int)
		}
		c.ext.seedParts[topic] = n
	}
}

// WithAutoCreateTopics sets whether topics are created on first use, as
// with a broker's allowAutoTopicCreation. With false, PRODUCER, SUBSCRIBE
// and LOOKUP on a topic the server does not know (not created by
// WithTopics, WithPartitionedTopic, SetPartitions, Publish, or an earlier
// use) are answered TopicNotFound, as a broker does. Default: true.
func WithAutoCreateTopics(on bool) Option {
	return func(c *config) { c.ext.noAutoCreate = !on }
}

// WithRecordLimit sets how many records each inspection log keeps (Frames,
// Deliveries, Acks, Redeliveries): the n most recent. 0 turns recording
// off (WaitFrame then waits in vain); a negative n keeps everything.
// Default: DefaultRecordLimit.
func WithRecordLimit(n int) Option {
	return func(c *config) { c.ext.recordLimit, c.ext.limitSet = n, true }
}

// serverExt is the Server's state for this file's hooks.
type serverExt struct {
	clock Clock
	// limit is the number of records each log keeps (< 0: all).
	limit int

	// cluster is the cluster the server is a broker (or the proxy) of,
	// nil for a standalone server. Set once, before serving.
	cluster *Cluster

	// admin is the admin API's state (admin.go); guarded by Server.mu.
	admin adminMeta

	// Guarded by Server.mu.
	faults       []*Fault
	migrated     map[string]migration
	subLogs      map[subKey]*subLog
	challenge    Timer
	challengeGen uint64

	// Wire faults, read on the write path without Server.mu.
	dropAfter  atomic.Int64 // frames left before a drop; <= 0: off
	corruptMsg atomic.Bool

	// log is the frame log, under its own lock: frames are recorded on
	// the write path, where Server.mu may or may not be held.
	log frameLog
}

// init applies the configuration; called by NewServer.
func (x *serverExt) init(s *Server) {
	x.clock = s.cfg.ext.clock
	if x.clock == nil {
		x.clock = realClock{}
	}
	x.limit = DefaultRecordLimit
	if s.cfg.ext.limitSet {
		x.limit = s.cfg.ext.recordLimit
	}
	x.log.limit = x.limit
	x.log.observe = s.cfg.frameObserver
	x.subLogs = make(map[subKey]*subLog)
	for _, name := range s.cfg.ext.seedTopics {
		if full, partition, ok := parseTopic(name); ok {
			s.topicLocked(full, partition)
		}
	}
	for name, n := range s.cfg.ext.seedParts {
		full, _, ok := parseTopic(name)
		if !ok || n <= 0 {
			continue
		}
		s.partitions[full] = n
		for i := range n {
			s.topicLocked(partitionName(full, i), int32(i))
		}
	}
}

func partitionName(full string, i int) string {
	return full + "-partition-" + strconv.Itoa(i)
}

// now is the server's clock reading.
func (x *serverExt) now() time.Time { return x.clock.Now() }

// peersChangedLocked wakes the waiters of the other servers of the
// cluster, which share this one's lock and topics.
func (x *serverExt) peersChangedLocked(s *Server) {
	if x.cluster == nil {
		return
	}
	for _, p := range x.cluster.membersLocked() {
		if p != s && p.changed != nil {
			close(p.changed)
			p.changed = nil
		}
	}
}

// receivedLocked is called for every command read, before interceptors:
// it records the frame and reports whether DropAfterFrames cuts the
// connection once the command is handled.
func (x *serverExt) receivedLocked(s *Server, c *Conn, f *frame.Frame, body []byte) (drop bool) {
	x.log.addIn(c, body, f.Payload != nil)
	x.recordSubscriptionCommandLocked(c, f.Command)
	return x.countFrame()
}

// countFrame counts one frame against DropAfterFrames and reports whether
// it is the last one to pass.
func (x *serverExt) countFrame() bool {
	for {
		n := x.dropAfter.Load()
		if n <= 0 {
			return false
		}
		if x.dropAfter.CompareAndSwap(n, n-1) {
			return n == 1
		}
	}
}

// sent is called, with c.wmu held, for the bytes of every frame queued
// on c (b aliases the write buffer): it records the frames, corrupts a
// MESSAGE's checksum when asked to, and cuts the connection once
// DropAfterFrames has let its last frame pass.
func (x *serverExt) sent(c *Conn, b []byte) {
	for len(b) >= 4 {
		n, ok := frame.TotalSize(b)
		if !ok || uint64(n) > uint64(len(b)-4) {
			x.log.addUnparsed(c)
			return
		}
		body := b[4 : 4+n]
		if x.corruptMsg.Load() && decodeCommand(body).GetType() == pulsarpb.BaseCommand_MESSAGE && corruptChecksum(body) {
			x.corruptMsg.Store(false)
		}
		x.log.addRaw(c, body)
		if x.countFrame() {
			c.wclosing = true // what is queued is written, then the connection closes
			c.cut.Store(true) // and nothing read from now on is handled
		}
		b = b[4+n:]
	}
	if len(b) > 0 {
		x.log.addUnparsed(c)
	}
}

// hostOf is the host:port of a service URL.
func hostOf(u string) string {
	if _, rest, ok := strings.Cut(u, "://"); ok {
		u = rest
	}
	return strings.TrimSuffix(u, "/")
}
