package pulsartest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Cluster is a Pulsar cluster in one process: brokers (Servers) that share
// one topic store and one lock, each owning some of the topics, and
// optionally a proxy in front of them.
//
// A topic (each partition of a partitioned topic on its own) is owned by
// one broker: the one Assign named, else the one a stable hash of its
// full name picks. Ownership is decided when the topic is first looked up
// or used, and then stays put until Unload, Move, Assign or RemoveBroker
// changes it; AddBroker does not move topics.
//
// As on a real cluster:
//   - LOOKUP at a broker that does not own the topic answers Redirect to
//     the owner's URL with authoritative=true; at the owner, or when the
//     lookup is authoritative, it answers Connect with the owner's URL.
//   - PRODUCER and SUBSCRIBE at a broker that does not own the topic are
//     answered ERROR ServiceNotReady ("Namespace bundle for topic ... not
//     served by this instance ... Please redo the lookup"), what a broker
//     answers for a topic of a bundle it does not own.
//   - With WithProxy, the cluster's URL is the proxy's: its lookups answer
//     Connect with the owner's URL and proxy_through_service_url=true, and
//     a connection whose CONNECT names proxy_to_broker_url is handed to
//     that broker, which then sees the client's own CONNECT (a real proxy
//     opens its own connection to the broker, and forwards bytes).
//
// Every method of a Cluster is safe for concurrent use.
type Cluster struct {
	// mu is the lock of every broker and of the proxy.
	mu *sync.Mutex

	opts []Option
	tcp  TB // set by StartCluster: new brokers get a TCP listener
	// place, set by ServeCluster, says where each new member is served.
	place   func(member string) (Endpoint, error)
	err     error // the first error of place or of starting a member
	wg      sync.WaitGroup
	proxyOn bool

	// Guarded by mu.
	brokers  []*Server
	proxy    *Server
	assigned map[string]*Server
	owners   map[string]*Server
	migrated map[string]migration
	nextName int
	closed   bool
	routing  map[net.Conn]struct{}
	plisten  map[net.Listener]struct{}
	admin    adminMeta // tenants and namespaces of the admin API
}

// WithProxy gives a Cluster a proxy (see Cluster): URL is then the
// proxy's. It has no effect on a single Server. Default: no proxy.
func WithProxy() Option {
	return func(c *config) { c.ext.proxy = true }
}

// NewCluster returns a cluster of n brokers (at least 1) configured by
// opts (WithAdvertisedURL excepted). Broker i advertises
// "pulsar://broker-i:6650", the proxy "pulsar://proxy:6650"; nothing is
// served until a test serves them: DialHook reaches them in memory by
// those addresses, or Start each of Brokers (and StartProxy) on a
// listener of that address, e.g. of the in-memory network of
// adapters/memory. StartCluster starts one on TCP loopback instead.
func NewCluster(n int, opts ...Option) *Cluster {
	return newCluster(nil, max(n, 1), opts)
}

// StartCluster starts a cluster of n brokers (and its proxy, with
// WithProxy) on TCP listeners at 127.0.0.1, each advertising its own
// address, and closes it when the test ends.
func StartCluster(t TB, n int, opts ...Option) *Cluster {
	t.Helper()
	c := newCluster(t, max(n, 1), opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Endpoint is where ServeCluster serves one member of a cluster: the URLs
// it advertises and the listeners it accepts on.
type Endpoint struct {
	URL       string // e.g. "pulsar://127.0.0.1:6650"
	TLSURL    string // e.g. "pulsar+ssl://127.0.0.1:6651"; may be empty
	Listeners []net.Listener
}

// ServeCluster starts a cluster of n brokers (and its proxy, with
// WithProxy) served where place says: place is called with each member's
// name ("broker-<i>", "proxy") and returns the URLs it advertises and the
// listeners — TCP, TLS, QUIC, in memory — to serve it on. It is how
// "pulsarconn serve" runs a cluster; tests usually want StartCluster.
func ServeCluster(n int, place func(member string) (Endpoint, error), opts ...Option) (*Cluster, error) {
	c := newClusterPlaced(nil, max(n, 1), opts, place)
	if c.err != nil {
		_ = c.Close()
		return nil, c.err
	}
	return c, nil
}

func newCluster(tb TB, n int, opts []Option) *Cluster {
	return newClusterPlaced(tb, n, opts, nil)
}

func newClusterPlaced(tb TB, n int, opts []Option, place func(string) (Endpoint, error)) *Cluster {
	var probe config
	for _, o := range opts {
		o(&probe)
	}
	c := &Cluster{
		mu:       new(sync.Mutex),
		opts:     opts,
		tcp:      tb,
		place:    place,
		proxyOn:  probe.ext.proxy,
		assigned: make(map[string]*Server),
		owners:   make(map[string]*Server),
		migrated: make(map[string]migration),
		routing:  make(map[net.Conn]struct{}),
		plisten:  make(map[net.Listener]struct{}),
	}
	for range n {
		c.addBroker()
	}
	if c.proxyOn && c.err == nil {
		ep := c.endpoint("proxy")
		p := c.newMember(ep)
		c.mu.Lock()
		c.proxy = p
		c.mu.Unlock()
		for _, l := range ep.Listeners {
			c.fail(c.StartProxy(l))
		}
	}
	return c
}

// fail records the first error of setting up a member; in a cluster
// started by StartCluster it fails the test.
func (c *Cluster) fail(err error) {
	if err == nil {
		return
	}
	if c.tcp != nil {
		c.tcp.Fatalf("pulsartest: %v", err)
	}
	if c.err == nil {
		c.err = err
	}
}

// endpoint chooses the URL of a new member: a TCP listener's address in a
// started cluster, else "pulsar://<name>:6650".
func (c *Cluster) endpoint(name string) Endpoint {
	switch {
	case c.place != nil:
		ep, err := c.place(name)
		c.fail(err)
		if err != nil {
			return Endpoint{URL: "pulsar://" + name + ":6650"}
		}
		return ep
	case c.tcp == nil:
		return Endpoint{URL: "pulsar://" + name + ":6650"}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.tcp.Fatalf("pulsartest: listen: %v", err)
	}
	return Endpoint{URL: "pulsar://" + l.Addr().String(), Listeners: []net.Listener{l}}
}

// newMember makes a server that shares the cluster's lock and store.
func (c *Cluster) newMember(ep Endpoint) *Server {
	opts := append(slices.Clone(c.opts), WithAdvertisedURL(ep.URL))
	if ep.TLSURL != "" {
		opts = append(opts, WithAdvertisedTLSURL(ep.TLSURL))
	}
	s := NewServer(opts...)
	s.mu = c.mu
	s.x.cluster = c
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.brokers) > 0 {
		first := c.brokers[0]
		s.topics = first.topics
		s.partitions = first.partitions
		shareMap(&first.schemas, &s.schemas)
	}
	return s
}

// shareMap makes *to the same map as *from, creating it if needed.
func shareMap[M ~map[K]V, K comparable, V any](from, to *M) {
	if *from == nil {
		*from = make(M)
	}
	*to = *from
}

func (c *Cluster) addBroker() *Server {
	c.mu.Lock()
	name := "broker-" + strconv.Itoa(c.nextName)
	c.nextName++
	c.mu.Unlock()
	ep := c.endpoint(name)
	s := c.newMember(ep)
	c.mu.Lock()
	c.brokers = append(c.brokers, s)
	c.mu.Unlock()
	for _, l := range ep.Listeners {
		c.fail(s.Start(l))
	}
	return s
}

// AddBroker adds a broker, which takes new topics by hash; the topics
// already owned stay where they are. It returns the new broker, the last
// of Brokers. Its name is "broker-<k>", k counting every broker ever
// added, so URLs are never reused.
func (c *Cluster) AddBroker() *Server {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil
	}
	return c.addBroker()
}

// RemoveBroker shuts broker i down as a broker does gracefully: its
// topics are unloaded (CLOSE_PRODUCER and CLOSE_CONSUMER, no assigned
// URL) and go to other brokers, then it closes. The brokers after i move
// down one index. The last broker cannot be removed.
func (c *Cluster) RemoveBroker(i int) error {
	c.mu.Lock()
	if i < 0 || i >= len(c.brokers) {
		c.mu.Unlock()
		return fmt.Errorf("pulsartest: no broker %d", i)
	}
	if len(c.brokers) == 1 {
		c.mu.Unlock()
		return errors.New("pulsartest: cannot remove the last broker")
	}
	b := c.brokers[i]
	c.brokers = slices.Delete(c.brokers, i, i+1)
	for name, owner := range c.owners {
		if owner == b {
			c.closeClientsLocked(name, "", "")
			delete(c.owners, name)
		}
	}
	for name, s := range c.assigned {
		if s == b {
			delete(c.assigned, name)
		}
	}
	// Its connections are closed once what is queued (the CLOSE_*) is
	// written (within closeFlushGrace); Close would cut them short.
	conns := make([]*Conn, 0, len(b.conns))
	for conn := range b.conns {
		conns = append(conns, conn)
		b.failLocked(conn)
	}
	c.mu.Unlock()
	for _, conn := range conns {
		<-conn.netDone
	}
	return b.Close()
}

// Brokers returns the brokers, in index order.
func (c *Cluster) Brokers() []*Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.brokers)
}

// Broker returns broker i.
func (c *Cluster) Broker(i int) *Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.brokers[i]
}

// Proxy returns the proxy's server (the one that answers lookups on
// connections that name no broker), or nil without WithProxy.
func (c *Cluster) Proxy() *Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proxy
}

// URL is the service URL clients should start from: the proxy's with
// WithProxy, else the first broker's.
func (c *Cluster) URL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proxy != nil {
		return c.proxy.urlLocked()
	}
	return c.brokers[0].urlLocked()
}

// membersLocked returns the brokers and the proxy.
func (c *Cluster) membersLocked() []*Server {
	if c.proxy == nil {
		return c.brokers
	}
	return append(slices.Clone(c.brokers), c.proxy)
}

// ownerLocked returns the owner of a topic (a full name), deciding it if
// no broker owns it yet.
func (c *Cluster) ownerLocked(name string) *Server {
	if s := c.owners[name]; s != nil {
		return s
	}
	s := c.assigned[name]
	if s == nil {
		h := fnv.New32a()
		_, _ = h.Write([]byte(name))
		s = c.brokers[h.Sum32()%uint32(len(c.brokers))]
	}
	c.owners[name] = s
	return s
}

func (c *Cluster) indexLocked(s *Server) int {
	return slices.Index(c.brokers, s)
}

// fullName normalises a topic name, or panics: the cluster's methods take
// names from the test, where a bad one is a bug.
func fullName(topicName string) string {
	name, _, ok := parseTopic(topicName)
	if !ok {
		panic("pulsartest: invalid topic name " + strconv.Quote(topicName))
	}
	return name
}

// Owner returns the index of the broker that owns topic, deciding it if
// no broker owns it yet.
func (c *Cluster) Owner(topicName string) int {
	name := fullName(topicName)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.indexLocked(c.ownerLocked(name))
}

// Assign makes broker i the owner of topic from now on (and again after
// an Unload). Clients attached at the previous owner, if any, are closed
// as by Unload.
func (c *Cluster) Assign(topicName string, i int) {
	name := fullName(topicName)
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.brokers[i]
	c.assigned[name] = b
	if prev := c.owners[name]; prev != nil && prev != b {
		c.closeClientsLocked(name, "", "")
	}
	c.owners[name] = b
}

// Unload unloads topic, as `pulsar-admin topics unload` does: its
// producers and consumers get CLOSE_PRODUCER and CLOSE_CONSUMER (no
// assigned URL: they look the topic up again), and its ownership is
// decided again at the next lookup (by Assign if one was made, else by
// hash: as on a real cluster, possibly the same broker). It returns how
// many producers and consumers were closed.
func (c *Cluster) Unload(topicName string) int {
	name := fullName(topicName)
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.closeClientsLocked(name, "", "")
	delete(c.owners, name)
	return n
}

// Move makes broker i the owner of topic and closes its producers and
// consumers with CLOSE_PRODUCER and CLOSE_CONSUMER naming the new owner
// (assignedBrokerServiceUrl, and ...Tls when the broker has one), as the
// extensible load manager does when it transfers a bundle, so that
// clients reconnect there without a lookup. It returns how many were
// closed.
func (c *Cluster) Move(topicName string, i int) int {
	name := fullName(topicName)
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.brokers[i]
	c.assigned[name] = b
	c.owners[name] = b
	return c.closeClientsLocked(name, b.urlLocked(), b.cfg.advertisedURLTLS)
}

// Migrate migrates topic to another cluster (blue-green migration): its
// producers and consumers get TOPIC_MIGRATED naming url and urlTLS, then
// CLOSE_PRODUCER and CLOSE_CONSUMER; producers and consumers that attach
// to it afterwards get the same. It returns how many were told.
func (c *Cluster) Migrate(topicName, url, urlTLS string) int {
	c.mu.Lock()
	owner := c.ownerLocked(fullName(topicName))
	c.mu.Unlock()
	return owner.Migrate(topicName, url, urlTLS)
}

// closeClientsLocked closes the producers and consumers of a topic, with
// CLOSE_PRODUCER and CLOSE_CONSUMER naming url and urlTLS (none when
// empty); it returns how many.
func (c *Cluster) closeClientsLocked(name, url, urlTLS string) int {
	return c.brokers[0].closeTopicClientsLocked(name, url, urlTLS, nil)
}

// Close closes the proxy and every broker, and waits for all they
// started.
func (c *Cluster) Close() error {
	c.mu.Lock()
	c.closed = true
	members := slices.Clone(c.membersLocked())
	ls := make([]net.Listener, 0, len(c.plisten))
	for l := range c.plisten {
		ls = append(ls, l)
	}
	ncs := make([]net.Conn, 0, len(c.routing))
	for nc := range c.routing {
		ncs = append(ncs, nc)
	}
	c.mu.Unlock()
	for _, l := range ls {
		_ = l.Close()
	}
	for _, nc := range ncs {
		_ = nc.Close()
	}
	var err error
	for _, s := range members {
		err = errors.Join(err, s.Close())
	}
	c.wg.Wait()
	return err
}

// DialHook returns a dial function that reaches the cluster in memory:
// an address (host:port, or a URL) of a broker or of the proxy connects
// to it over net.Pipe, as Server.DialHook does; any other address fails.
func (c *Cluster) DialHook() func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		addr = hostOf(addr)
		c.mu.Lock()
		var target *Server
		for _, s := range c.brokers {
			if hostOf(s.urlLocked()) == addr {
				target = s
			}
		}
		proxy := c.proxy != nil && hostOf(c.proxy.urlLocked()) == addr
		c.mu.Unlock()
		switch {
		case target != nil:
			return target.DialHook()(ctx, addr)
		case proxy:
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			client, server := net.Pipe()
			if err := c.routeBackground(server); err != nil {
				_ = client.Close()
				return nil, err
			}
			return client, nil
		}
		return nil, &net.OpError{Op: "dial", Net: "pulsartest", Err: fmt.Errorf("no broker at %s", addr)}
	}
}

// StartProxy serves the proxy on l in the background. URL and the lookup
// answers keep the proxy's advertised URL.
func (c *Cluster) StartProxy(l net.Listener) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proxy == nil {
		return errors.New("pulsartest: the cluster has no proxy (WithProxy)")
	}
	if c.closed {
		_ = l.Close()
		return ErrServerClosed
	}
	c.plisten[l] = struct{}{}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			if c.routeBackground(nc) != nil {
				return
			}
		}
	}()
	return nil
}

// routeBackground reads a proxy connection's first frame, on a goroutine,
// and hands the connection to the broker its CONNECT names, or to the
// proxy's server.
func (c *Cluster) routeBackground(nc net.Conn) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		_ = nc.Close()
		return ErrServerClosed
	}
	c.routing[nc] = struct{}{}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.route(nc)
	}()
	return nil
}

func (c *Cluster) route(nc net.Conn) {
	first, cmd, err := readFirstFrame(nc, c.proxy.cfg.maxMessageSize+frame.Padding)
	c.mu.Lock()
	delete(c.routing, nc)
	closed := c.closed
	target := c.proxy
	if want := cmd.GetConnect().GetProxyToBrokerUrl(); want != "" {
		target = nil
		for _, s := range c.brokers {
			// "host:port", as a real proxy requires: it fails to
			// resolve the host of a URL with its scheme.
			if hostOf(s.urlLocked()) == want {
				target = s
			}
		}
	}
	c.mu.Unlock()
	if err != nil || closed {
		_ = nc.Close()
		return
	}
	if target == nil {
		// A proxy refuses a broker it does not know of.
		b, _ := frame.AppendCommand(nil, errorCommand(noRequestID, pulsarpb.ServerError_ServiceNotReady,
			"Target broker "+cmd.GetConnect().GetProxyToBrokerUrl()+" is not a broker of this cluster"))
		_, _ = nc.Write(b)
		_ = nc.Close()
		return
	}
	_ = target.serveBackground(&replayConn{Conn: nc, pending: first})
}

// readFirstFrame reads exactly one frame from r, without reading ahead,
// and returns its bytes and command.
func readFirstFrame(r io.Reader, maxSize int) ([]byte, *pulsarpb.BaseCommand, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || uint64(n) > uint64(maxSize) {
		return nil, nil, frame.ErrFrameTooLarge
	}
	b := make([]byte, 4+n)
	copy(b, size[:])
	if _, err := io.ReadFull(r, b[4:]); err != nil {
		return nil, nil, err
	}
	return b, decodeCommand(b[4:]), nil
}

// replayConn is a connection whose first bytes were already read: Read
// returns them again first.
type replayConn struct {
	net.Conn
	pending []byte
}

func (r *replayConn) Read(b []byte) (int, error) {
	if len(r.pending) > 0 {
		n := copy(b, r.pending)
		r.pending = r.pending[n:]
		return n, nil
	}
	return r.Conn.Read(b)
}

// closeTopicClientsLocked closes the producers and consumers attached to
// a topic (a full name), with CLOSE_PRODUCER and CLOSE_CONSUMER naming url
// and urlTLS; before, when not nil, is called for each first (to send
// TOPIC_MIGRATED). It returns how many were closed.
func (s *Server) closeTopicClientsLocked(name, url, urlTLS string, before func(c *Conn, rt pulsarpb.CommandTopicMigrated_ResourceType, id uint64)) int {
	t := s.topics[name]
	if t == nil {
		return 0
	}
	n := 0
	producers := slices.Clone(t.waiting)
	for p := range t.producers {
		producers = append(producers, p)
	}
	for _, p := range producers {
		if p.conn.state != stateConnected {
			continue
		}
		if before != nil {
			before(p.conn, pulsarpb.CommandTopicMigrated_Producer, p.id)
		}
		s.pushCloseProducerLocked(p, url, urlTLS)
		n++
	}
	for _, sub := range t.subs {
		for _, cons := range slices.Backward(slices.Clone(sub.consumers)) {
			if cons.conn.state != stateConnected {
				continue
			}
			if before != nil {
				before(cons.conn, pulsarpb.CommandTopicMigrated_Consumer, cons.id)
			}
			s.removeConsumerLocked(cons)
			_ = cons.conn.Send(closeConsumer(cons.id, url, urlTLS))
			n++
		}
	}
	s.changedLocked()
	return n
}

// Unload closes the producers and consumers of a topic with
// CLOSE_PRODUCER and CLOSE_CONSUMER, as a broker does when the topic is
// unloaded; clients look the topic up again and reattach. It returns how
// many were closed. (On a Cluster, use Cluster.Unload, which also lets
// the ownership go.)
func (s *Server) Unload(topicName string) int {
	name := fullName(topicName)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeTopicClientsLocked(name, "", "", nil)
}

// migration is where a migrated topic went.
type migration struct{ url, urlTLS string }

// Migrate marks a topic as migrated to another cluster (blue-green
// migration): its producers and consumers get TOPIC_MIGRATED naming url
// and urlTLS, then CLOSE_PRODUCER and CLOSE_CONSUMER, as from a broker
// (which disconnects them after telling them); producers and consumers
// that attach to it later are accepted and then told the same. It returns
// how many were told.
func (s *Server) Migrate(topicName, url, urlTLS string) int {
	name := fullName(topicName)
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.x.migrationsLocked()
	m[name] = migration{url, urlTLS}
	return s.closeTopicClientsLocked(name, "", "", func(c *Conn, rt pulsarpb.CommandTopicMigrated_ResourceType, id uint64) {
		_ = c.Send(topicMigrated(rt, id, url, urlTLS))
	})
}

func topicMigrated(rt pulsarpb.CommandTopicMigrated_ResourceType, id uint64, url, urlTLS string) *pulsarpb.BaseCommand {
	tm := &pulsarpb.CommandTopicMigrated{ResourceId: proto.Uint64(id), ResourceType: rt.Enum()}
	if url != "" {
		tm.BrokerServiceUrl = proto.String(url)
	}
	if urlTLS != "" {
		tm.BrokerServiceUrlTls = proto.String(urlTLS)
	}
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_TOPIC_MIGRATED.Enum(), TopicMigrated: tm}
}

// migrationsLocked is the map of migrated topics: the cluster's, shared
// by its brokers, or the server's own.
func (x *serverExt) migrationsLocked() map[string]migration {
	if x.cluster != nil {
		return x.cluster.migrated
	}
	if x.migrated == nil {
		x.migrated = make(map[string]migration)
	}
	return x.migrated
}

// knownLocked reports whether a topic (a full name) exists: created, or
// a partitioned topic, or one of its partitions.
func (s *Server) knownLocked(name string) bool {
	if s.topics[name] != nil || s.partitions[name] > 0 {
		return true
	}
	if i := strings.LastIndex(name, "-partition-"); i >= 0 {
		if p, err := strconv.Atoi(name[i+len("-partition-"):]); err == nil && p >= 0 {
			return p < s.partitions[name[:i]]
		}
	}
	return false
}

// gateLocked runs before the usual handling of every command: declared
// faults, then, on a connected connection, what depends on topic
// existence and ownership. It reports whether it answered the command.
func (x *serverExt) gateLocked(s *Server, c *Conn, f *frame.Frame) bool {
	cmd := f.Command
	if len(x.faults) > 0 && x.faultLocked(s, c, cmd) {
		return true
	}
	if c.state != stateConnected {
		return false
	}
	switch cmd.GetType() {
	case pulsarpb.BaseCommand_LOOKUP:
		return x.lookupLocked(s, c, cmd)
	case pulsarpb.BaseCommand_PRODUCER, pulsarpb.BaseCommand_SUBSCRIBE:
		return s.refuseTerminatedLocked(c, cmd) || s.quotaGateLocked(c, cmd) || x.attachLocked(s, c, cmd)
	case pulsarpb.BaseCommand_SEND:
		return s.quotaGateLocked(c, cmd)
	}
	return false
}

func (x *serverExt) lookupLocked(s *Server, c *Conn, cmd *pulsarpb.BaseCommand) bool {
	l := cmd.GetLookupTopic()
	name, _, ok := parseTopic(l.GetTopic())
	if !ok {
		return false
	}
	if s.cfg.ext.noAutoCreate && !s.knownLocked(name) {
		_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_TopicNotFound, "Topic not found "+name))
		return true
	}
	cl := x.cluster
	if cl == nil {
		return false
	}
	owner := cl.ownerLocked(name)
	resp := &pulsarpb.CommandLookupTopicResponse{
		RequestId:              proto.Uint64(l.GetRequestId()),
		Response:               pulsarpb.CommandLookupTopicResponse_Connect.Enum(),
		BrokerServiceUrl:       proto.String(owner.urlLocked()),
		Authoritative:          proto.Bool(true), // a Connect names the owner
		ProxyThroughServiceUrl: proto.Bool(s == cl.proxy),
	}
	if owner.cfg.advertisedURLTLS != "" {
		resp.BrokerServiceUrlTls = proto.String(owner.cfg.advertisedURLTLS)
	}
	if s != cl.proxy && s != owner && !l.GetAuthoritative() {
		resp.Response = pulsarpb.CommandLookupTopicResponse_Redirect.Enum()
	}
	_ = c.Send(&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_LOOKUP_RESPONSE.Enum(), LookupTopicResponse: resp})
	return true
}

func (x *serverExt) attachLocked(s *Server, c *Conn, cmd *pulsarpb.BaseCommand) bool {
	producer := cmd.GetType() == pulsarpb.BaseCommand_PRODUCER
	raw := cmd.GetSubscribe().GetTopic()
	if producer {
		raw = cmd.GetProducer().GetTopic()
	}
	name, _, ok := parseTopic(raw)
	if !ok {
		return false
	}
	if s.cfg.ext.noAutoCreate && !s.knownLocked(name) {
		_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_TopicNotFound, "Topic Not Found."))
		return true
	}
	if cl := x.cluster; cl != nil {
		if owner := cl.ownerLocked(name); owner != s {
			ns := name
			if _, rest, ok := strings.Cut(name, "://"); ok {
				if i := strings.LastIndex(rest, "/"); i >= 0 {
					ns = rest[:i]
				}
			}
			_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_ServiceNotReady, fmt.Sprintf(
				"Namespace bundle for topic (%s) not served by this instance:%s. Please redo the lookup. Request is denied: namespace=%s",
				name, hostOf(s.urlLocked()), ns)))
			return true
		}
	}
	m, migrated := x.migrationsLocked()[name]
	if !migrated {
		return false
	}
	// Attached as usual, then told where the topic went and closed.
	if producer {
		s.handleProducerLocked(c, cmd)
		if p := c.producers[cmd.GetProducer().GetProducerId()]; p != nil {
			_ = c.Send(topicMigrated(pulsarpb.CommandTopicMigrated_Producer, p.id, m.url, m.urlTLS))
			s.pushCloseProducerLocked(p, "", "")
		}
		return true
	}
	s.handleSubscribeLocked(c, cmd)
	if cons := c.consumers[cmd.GetSubscribe().GetConsumerId()]; cons != nil {
		_ = c.Send(topicMigrated(pulsarpb.CommandTopicMigrated_Consumer, cons.id, m.url, m.urlTLS))
		s.removeConsumerLocked(cons)
		_ = c.Send(closeConsumer(cons.id, "", ""))
	}
	return true
}
