package realcluster

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// cluster is what a scenario needs of a Pulsar cluster of two brokers
// and a proxy: where to connect, who owns a topic, and the faults that
// move topics. Broker indexes are those of BrokerURLs.
type cluster interface {
	// ServiceURL is every broker, as one multi-host service URL.
	ServiceURL() string
	// ProxyURL is the proxy's binary-protocol URL.
	ProxyURL() string
	// BrokerURLs are the live brokers' service URLs, in index order.
	BrokerURLs() []string
	// Owner is the service URL of the broker that owns topic, as the
	// cluster itself answers (canonical, as pulsarconn.ParseURL gives).
	Owner(t testing.TB, topic string) string
	// Unload unloads topic's namespace bundle, as an operator does.
	Unload(t testing.TB, topic string)
	// Kill kills broker i without a goodbye (kill -9).
	Kill(t testing.TB, i int)
	// Restart brings the broker killed as i back.
	Restart(t testing.TB, i int)
	// NewNamespace creates a namespace of 16 bundles and returns its
	// name, "tenant/namespace".
	NewNamespace(t testing.TB) string
}

// proxySeer is a cluster that can show the proxy_to_broker_url of the
// CONNECTs a broker received through the proxy: the fake one (a real
// proxy opens its own connection to the broker, so its CONNECT is the
// proxy's, not the client's).
type proxySeer interface {
	// ProxiedTo returns the proxy_to_broker_url of the last CONNECT that
	// the broker at brokerURL received.
	ProxiedTo(t testing.TB, brokerURL string) string
}

// canonical is url as pulsarconn.ParseURL writes it, so that URLs from
// the cluster and from the Client compare equal.
func canonical(t testing.TB, url string) string {
	t.Helper()
	a, err := pulsarconn.ParseURL(url)
	if err != nil {
		t.Fatalf("broker URL %q: %v", url, err)
	}
	return a.URL
}

// multiHost joins broker URLs into one service URL with several hosts.
func multiHost(urls []string) string {
	hosts := make([]string, len(urls))
	for i, u := range urls {
		_, hosts[i], _ = strings.Cut(u, "://")
	}
	return "pulsar://" + strings.Join(hosts, ",")
}

// randomName is a short random suffix for names that must not collide
// across runs against one cluster.
func randomName() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fakeCluster is pulsartest's cluster mode: two brokers and a proxy in
// this process, on TCP loopback.
type fakeCluster struct {
	c *pulsartest.Cluster
}

// newFake starts a fake cluster of two brokers and a proxy for one test.
func newFake(t *testing.T) cluster {
	return &fakeCluster{c: pulsartest.StartCluster(t, 2, pulsartest.WithProxy())}
}

func (f *fakeCluster) ServiceURL() string { return multiHost(f.BrokerURLs()) }
func (f *fakeCluster) ProxyURL() string   { return f.c.URL() }

func (f *fakeCluster) BrokerURLs() []string {
	var urls []string
	for _, s := range f.c.Brokers() {
		urls = append(urls, s.URL())
	}
	return urls
}

func (f *fakeCluster) Owner(t testing.TB, topic string) string {
	return canonical(t, f.c.Broker(f.c.Owner(topic)).URL())
}

// Unload hands topic to the other broker, closing its producers and
// consumers without naming the new owner, as a bundle unload followed by
// a lookup that lands on the other broker does. (The fake's own Unload
// gives the topic back to the broker its name hashes to, the same one;
// a real load manager may choose either, and the scenarios must cope
// with both.)
func (f *fakeCluster) Unload(t testing.TB, topic string) {
	n := len(f.c.Brokers())
	if n == 1 {
		f.c.Unload(topic)
		return
	}
	f.c.Assign(topic, (f.c.Owner(topic)+1)%n)
}

// Kill closes broker i at once, connections and listener, without
// CLOSE_PRODUCER or CLOSE_CONSUMER, as kill -9 does, and then gives its
// topics to the other brokers, as the metadata store does once the dead
// broker's session expires.
func (f *fakeCluster) Kill(t testing.TB, i int) {
	t.Helper()
	if err := f.c.Broker(i).Close(); err != nil {
		t.Fatalf("close broker %d: %v", i, err)
	}
	if err := f.c.RemoveBroker(i); err != nil {
		t.Fatalf("remove broker %d: %v", i, err)
	}
}

// Restart adds a broker; it has a new URL (the fake's brokers are never
// started again on the same one) and takes no topic until one is
// assigned by hash.
func (f *fakeCluster) Restart(t testing.TB, _ int) { f.c.AddBroker() }

// NewNamespace names a namespace: the fake needs none created, and
// places topics by their own name, not by bundle.
func (f *fakeCluster) NewNamespace(t testing.TB) string { return "public/c-" + randomName() }

func (f *fakeCluster) ProxiedTo(t testing.TB, brokerURL string) string {
	t.Helper()
	for _, s := range f.c.Brokers() {
		if canonical(t, s.URL()) == canonical(t, brokerURL) {
			return s.LastConnect().GetProxyToBrokerUrl()
		}
	}
	t.Fatalf("no broker at %s", brokerURL)
	return ""
}

// realOnce is the real cluster, read from the environment once.
var realOnce = sync.OnceValue(func() *realCluster { return readEnv() })

// newReal returns the real cluster of the environment; every TestReal
// test shares it, each in namespaces of its own.
func newReal(t *testing.T) cluster {
	rc := realOnce()
	if rc.err != "" {
		t.Fatal(rc.err)
	}
	return rc
}
