package pulsartest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// The status codes, reasons and bodies these tests expect are those an
// Apache Pulsar 4.2.4 standalone broker answered to the same requests.

// admin is a tiny HTTP client for the admin API of a server.
type admin struct {
	t    *testing.T
	base string
}

// startAdmin serves the admin API of s on a loopback listener.
func startAdmin(t *testing.T, s *pulsartest.Server) *admin {
	t.Helper()
	require.NoError(t, s.StartAdmin(listen(t)))
	return &admin{t: t, base: s.AdminURL()}
}

// reply is an HTTP answer.
type reply struct {
	code  int
	body  string
	ctype string
}

// reason is the "reason" of a JSON error body.
func (r reply) reason() string {
	var e struct{ Reason string }
	_ = json.Unmarshal([]byte(r.body), &e)
	return e.Reason
}

func (a *admin) do(method, path, body string) reply {
	a.t.Helper()
	req, err := http.NewRequestWithContext(ctx(a.t), method, a.base+path, strings.NewReader(body))
	require.NoError(a.t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(a.t, err)
	return reply{code: resp.StatusCode, body: string(b), ctype: resp.Header.Get("Content-Type")}
}

// json GETs path and decodes its JSON answer, which must be 200.
func (a *admin) json(path string, out any) {
	a.t.Helper()
	r := a.do("GET", path, "")
	require.Equal(a.t, http.StatusOK, r.code, r.body)
	require.NoError(a.t, json.Unmarshal([]byte(r.body), out), r.body)
}

// expect checks an answer's status and, for an error, its reason.
func (a *admin) expect(method, path, body string, code int, reason string) {
	a.t.Helper()
	r := a.do(method, path, body)
	assert.Equal(a.t, code, r.code, "%s %s: %s", method, path, r.body)
	if reason != "" {
		assert.Equal(a.t, reason, r.reason(), "%s %s", method, path)
		assert.Equal(a.t, "application/json", r.ctype)
	}
}

// attach connects a raw client to s with a producer (id 7) and a Shared
// consumer (id 9, subscription "sub") on topic.
func attach(t *testing.T, s *pulsartest.Server, topic string) *client {
	t.Helper()
	c := dial(t, s)
	c.handshake()
	c.send(producerCmd(1, 7, topic, "", pulsarpb.ProducerAccessMode_Shared))
	c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
	sub := subscribeCmd(2, 9, topic, "sub", pulsarpb.CommandSubscribe_Shared, pulsarpb.CommandSubscribe_Earliest)
	sub.Subscribe.ForceTopicCreation = proto.Bool(true)
	c.send(sub)
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	return c
}

// expectUnloaded reads CLOSE_PRODUCER for 7 then CLOSE_CONSUMER for 9,
// without an assigned broker, as a standalone broker sends on unload.
func (c *client) expectUnloaded() {
	c.t.Helper()
	cp := c.expect(pulsarpb.BaseCommand_CLOSE_PRODUCER).GetCloseProducer()
	assert.Equal(c.t, uint64(7), cp.GetProducerId())
	assert.Nil(c.t, cp.AssignedBrokerServiceUrl)
	cc := c.expect(pulsarpb.BaseCommand_CLOSE_CONSUMER).GetCloseConsumer()
	assert.Equal(c.t, uint64(9), cc.GetConsumerId())
	assert.Nil(c.t, cc.AssignedBrokerServiceUrl)
}

func TestAdminHealthAndClusters(t *testing.T) {
	s := pulsartest.NewTCP(t)
	a := startAdmin(t, s)
	r := a.do("GET", "/admin/v2/brokers/health", "")
	assert.Equal(t, reply{code: 200, body: "ok", ctype: "application/json"}, r)
	var clusters []string
	a.json("/admin/v2/clusters", &clusters)
	assert.Equal(t, []string{"standalone"}, clusters)
	var data map[string]string
	a.json("/admin/v2/clusters/standalone", &data)
	assert.Equal(t, s.URL(), data["brokerServiceUrl"])
	assert.Equal(t, a.base, data["serviceUrl"])
	a.expect("GET", "/admin/v2/clusters/nope", "", 404, "Cluster does not exist")
}

func TestAdminTenantsAndNamespaces(t *testing.T) {
	s := pulsartest.NewTCP(t)
	a := startAdmin(t, s)
	var list []string
	a.json("/admin/v2/tenants", &list)
	assert.Equal(t, []string{"public", "pulsar"}, list)
	a.json("/admin/v2/namespaces/public", &list)
	assert.Equal(t, []string{"public/default"}, list)

	info := `{"adminRoles":[],"allowedClusters":["standalone"]}`
	a.expect("PUT", "/admin/v2/tenants/tt", info, 204, "")
	a.expect("PUT", "/admin/v2/tenants/tt", info, 409, "Tenant already exist")
	a.expect("PUT", "/admin/v2/tenants/t2", `{"allowedClusters":["nope"]}`, 412, "Clusters do not exist")
	a.expect("PUT", "/admin/v2/tenants/t3", "", 412, "TenantInfo is null")
	var got map[string][]string
	a.json("/admin/v2/tenants/tt", &got)
	assert.Equal(t, map[string][]string{"adminRoles": {}, "allowedClusters": {"standalone"}}, got)

	a.expect("PUT", "/admin/v2/namespaces/tt/ns1", "", 204, "")
	a.expect("PUT", "/admin/v2/namespaces/tt/ns1", "", 409, "Namespace already exists")
	a.expect("PUT", "/admin/v2/namespaces/nosuch/ns1", "", 404, "Tenant does not exist")
	a.expect("PUT", "/admin/v2/namespaces/tt/ns2", "{}", 204, "")
	a.json("/admin/v2/namespaces/tt", &list)
	assert.Equal(t, []string{"tt/ns1", "tt/ns2"}, list)
	a.expect("GET", "/admin/v2/namespaces/nosuch", "", 404, "Tenant not found")
	a.expect("DELETE", "/admin/v2/tenants/tt", "", 409, "The tenant still has active namespaces")

	a.expect("PUT", "/admin/v2/persistent/tt/ns1/x", "", 204, "")
	a.expect("PUT", "/admin/v2/persistent/tt/nons/x", "", 404, "Namespace not found")
	a.expect("DELETE", "/admin/v2/namespaces/tt/ns1", "", 409, "Cannot delete non empty namespace")
	a.expect("DELETE", "/admin/v2/persistent/tt/ns1/x", "", 204, "")
	a.expect("DELETE", "/admin/v2/namespaces/tt/ns1", "", 204, "")
	a.expect("DELETE", "/admin/v2/namespaces/tt/ns1", "", 404, "Namespace tt/ns1 does not exist.")
	a.expect("DELETE", "/admin/v2/namespaces/tt/ns2", "", 204, "")
	a.expect("DELETE", "/admin/v2/tenants/tt", "", 204, "")
	a.expect("DELETE", "/admin/v2/tenants/tt", "", 404, "Tenant doesn't exist")
	a.expect("GET", "/admin/v2/tenants/tt", "", 404, "Tenant does not exist")
}

func TestAdminTopics(t *testing.T) {
	s := pulsartest.NewTCP(t)
	a := startAdmin(t, s)
	const base = "/admin/v2/persistent/public/default/"
	a.expect("PUT", base+"t1", "", 204, "")
	a.expect("PUT", base+"t1", "", 409, "This topic already exists")
	a.expect("PUT", "/admin/v2/non-persistent/public/default/np1", "", 204, "")
	var list []string
	a.json("/admin/v2/persistent/public/default", &list)
	assert.Equal(t, []string{"persistent://public/default/t1"}, list)
	a.json("/admin/v2/non-persistent/public/default", &list)
	assert.Equal(t, []string{"non-persistent://public/default/np1"}, list)
	a.json("/admin/v2/namespaces/public/default/topics?mode=ALL", &list)
	assert.Equal(t, []string{"non-persistent://public/default/np1", "persistent://public/default/t1"}, list)

	a.expect("DELETE", base+"nosuch", "", 404, "Topic persistent://public/default/nosuch not found")
	a.expect("DELETE", base+"t1", "", 204, "")
	a.expect("DELETE", "/admin/v2/non-persistent/public/default/np1", "", 204, "")
	a.json("/admin/v2/persistent/public/default", &list)
	assert.Empty(t, list)

	// With clients attached, only a forced deletion goes through, and it
	// closes them.
	c := attach(t, s, "persistent://public/default/busy")
	a.expect("DELETE", base+"busy", "", 412, "Topic has 2 clients connected Including 1 consumers, 1 producers, and 0 replicators.")
	a.expect("DELETE", base+"busy?force=true", "", 204, "")
	c.expectUnloaded()
	a.expect("GET", base+"busy/stats", "", 404, "Topic persistent://public/default/busy not found")
}

func TestAdminPartitionedTopics(t *testing.T) {
	s := pulsartest.NewTCP(t)
	a := startAdmin(t, s)
	const p1 = "/admin/v2/persistent/public/default/p1"
	a.expect("PUT", p1+"/partitions", "3", 204, "")
	a.expect("PUT", p1+"/partitions", "3", 409, "This topic already exists")
	a.expect("PUT", "/admin/v2/persistent/public/default/p2/partitions", "0", 406, "Number of partitions should be more than 0")
	assert.Equal(t, 400, a.do("PUT", "/admin/v2/persistent/public/default/p2/partitions", "abc").code)

	var md map[string]any
	a.json(p1+"/partitions", &md)
	assert.Equal(t, map[string]any{"partitions": 3.0, "deleted": false}, md)
	a.expect("GET", "/admin/v2/persistent/public/default/nosuch/partitions", "", 404, "Topic persistent://public/default/nosuch not found")
	a.json("/admin/v2/persistent/public/default/nosuch/partitions?checkAllowAutoCreation=true", &md)
	assert.Equal(t, 0.0, md["partitions"])

	var list []string
	a.json("/admin/v2/persistent/public/default/partitioned", &list)
	assert.Equal(t, []string{"persistent://public/default/p1"}, list)
	a.json("/admin/v2/persistent/public/default", &list)
	assert.Equal(t, []string{
		"persistent://public/default/p1-partition-0",
		"persistent://public/default/p1-partition-1",
		"persistent://public/default/p1-partition-2",
	}, list)

	a.expect("POST", p1+"/partitions", "2", 422, "Desired partitions 2 can't be less than the current partitions 3.")
	a.expect("POST", p1+"/partitions", "5", 204, "")
	a.expect("PUT", "/admin/v2/persistent/public/default/t1", "", 204, "")
	a.expect("POST", "/admin/v2/persistent/public/default/t1/partitions", "5", 409, "Topic persistent://public/default/t1 is not the partitioned topic.")

	// The binary protocol sees the same metadata.
	c := dial(t, s)
	c.handshake()
	c.send(&pulsarpb.BaseCommand{
		Type:              pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
		PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{Topic: proto.String("p1"), RequestId: proto.Uint64(1)},
	})
	assert.Equal(t, uint32(5), c.expect(pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE).GetPartitionMetadataResponse().GetPartitions())

	a.expect("DELETE", p1, "", 409, "persistent://public/default/p1 is a partitioned topic, instead of calling delete topic, please call delete-partitioned-topic.")
	a.expect("DELETE", "/admin/v2/persistent/public/default/t1/partitions", "", 409, "persistent://public/default/t1 is a non-partitioned topic. Instead of calling delete-partitioned-topic please call delete.")
	a.expect("DELETE", "/admin/v2/persistent/public/default/nosuch/partitions", "", 404, "Topic persistent://public/default/nosuch not found.")
	a.expect("DELETE", p1+"/partitions", "", 204, "")
	a.json("/admin/v2/persistent/public/default/partitioned", &list)
	assert.Empty(t, list)
}

func TestAdminSubscriptions(t *testing.T) {
	s := pulsartest.NewTCP(t)
	a := startAdmin(t, s)
	const t1 = "/admin/v2/persistent/public/default/t1"
	a.expect("PUT", t1+"/subscription/s1", "", 204, "") // creates the topic
	a.expect("PUT", t1+"/subscription/s1", "", 409, "Subscription already exists for topic")
	a.expect("PUT", t1+"/subscription/s2", `{"ledgerId":-1,"entryId":-1}`, 204, "")
	var list []string
	a.json(t1+"/subscriptions", &list)
	assert.Equal(t, []string{"s1", "s2"}, list)
	a.expect("DELETE", t1+"/subscription/nosub", "", 404, "Subscription nosub not found for topic persistent://public/default/t1")
	a.expect("DELETE", t1+"/subscription/s2", "", 204, "")
	a.expect("GET", "/admin/v2/persistent/public/default/nosuch/subscriptions", "", 404, "Topic persistent://public/default/nosuch not found")

	// On a partitioned topic, on every partition.
	a.expect("PUT", "/admin/v2/persistent/public/default/p/partitions", "2", 204, "")
	a.expect("PUT", "/admin/v2/persistent/public/default/p/subscription/ps", "", 204, "")
	a.json("/admin/v2/persistent/public/default/p-partition-1/subscriptions", &list)
	assert.Equal(t, []string{"ps"}, list)

	// A subscription with consumers is deleted only by force, which
	// closes them.
	c := attach(t, s, "persistent://public/default/t1")
	a.expect("DELETE", t1+"/subscription/sub", "", 412, "Subscription has active connected consumers")
	a.expect("DELETE", t1+"/subscription/sub?force=true", "", 204, "")
	cc := c.expect(pulsarpb.BaseCommand_CLOSE_CONSUMER).GetCloseConsumer()
	assert.Equal(t, uint64(9), cc.GetConsumerId())
	_, found := s.Subscription("t1", "sub")
	assert.False(t, found)
}

func TestAdminResetCursor(t *testing.T) {
	s := pulsartest.NewTCP(t)
	a := startAdmin(t, s)
	publish(s, "t1", "m0", "m1", "m2") // published at 1_700_000_000_000 + i
	const t1 = "/admin/v2/persistent/public/default/t1"
	a.expect("PUT", t1+"/subscription/s", `{"ledgerId":-1,"entryId":-1}`, 204, "")
	backlog := func() int {
		n, ok := s.Backlog("t1", "s")
		require.True(t, ok)
		return n
	}
	assert.Equal(t, 3, backlog())
	a.expect("POST", t1+"/subscription/s/resetcursor/1700000000002", "", 204, "")
	assert.Equal(t, 1, backlog())
	a.expect("POST", t1+"/subscription/s/resetcursor", `{"ledgerId":1,"entryId":1}`, 204, "")
	assert.Equal(t, 2, backlog())
	a.expect("POST", t1+"/subscription/s/resetcursor", `{"ledgerId":1,"entryId":1,"isExcluded":true}`, 204, "")
	assert.Equal(t, 1, backlog())
	a.expect("POST", t1+"/subscription/nosub/resetcursor/0", "", 404, "Subscription nosub not found for topic persistent://public/default/t1")
	a.expect("POST", "/admin/v2/persistent/public/default/nosuch/subscription/x/resetcursor/0", "", 404, "Topic persistent://public/default/nosuch not found")

	// The consumers of a subscription reset are disconnected, to
	// subscribe again at the new position.
	c := attach(t, s, "persistent://public/default/t1")
	a.expect("POST", t1+"/subscription/sub/resetcursor/0", "", 204, "")
	cc := c.expect(pulsarpb.BaseCommand_CLOSE_CONSUMER).GetCloseConsumer()
	assert.Equal(t, uint64(9), cc.GetConsumerId())
	n, _ := s.Backlog("t1", "sub")
	assert.Equal(t, 3, n)
}

func TestAdminStats(t *testing.T) {
	s := pulsartest.NewTCP(t)
	a := startAdmin(t, s)
	c := dial(t, s)
	c.handshake()
	p := producerCmd(1, 7, "t1", "prod", pulsarpb.ProducerAccessMode_Shared)
	p.Producer.Metadata = []*pulsarpb.KeyValue{{Key: proto.String("k"), Value: proto.String("v")}}
	c.send(p)
	c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
	c.send(subscribeCmd(2, 9, "t1", "sub", pulsarpb.CommandSubscribe_Failover, pulsarpb.CommandSubscribe_Earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.expect(pulsarpb.BaseCommand_ACTIVE_CONSUMER_CHANGE)
	publish(s, "t1", "hello", "world")

	var st struct {
		MsgInCounter   int64 `json:"msgInCounter"`
		BytesInCounter int64 `json:"bytesInCounter"`
		Publishers     []struct {
			ProducerID   uint64            `json:"producerId"`
			ProducerName string            `json:"producerName"`
			AccessMode   string            `json:"accessMode"`
			Metadata     map[string]string `json:"metadata"`
		} `json:"publishers"`
		Subscriptions map[string]struct {
			MsgBacklog      int64  `json:"msgBacklog"`
			UnackedMessages int64  `json:"unackedMessages"`
			Type            string `json:"type"`
			IsDurable       bool   `json:"isDurable"`
			Consumers       []struct {
				AvailablePermits int64  `json:"availablePermits"`
				ClientVersion    string `json:"clientVersion"`
			} `json:"consumers"`
		} `json:"subscriptions"`
	}
	a.json("/admin/v2/persistent/public/default/t1/stats", &st)
	assert.Equal(t, int64(2), st.MsgInCounter)
	assert.Greater(t, st.BytesInCounter, int64(10)+2*10, "payloads, metadata and headers")
	require.Len(t, st.Publishers, 1)
	assert.Equal(t, uint64(7), st.Publishers[0].ProducerID)
	assert.Equal(t, "prod", st.Publishers[0].ProducerName)
	assert.Equal(t, "Shared", st.Publishers[0].AccessMode)
	assert.Equal(t, map[string]string{"k": "v"}, st.Publishers[0].Metadata)
	sub := st.Subscriptions["sub"]
	assert.Equal(t, int64(2), sub.MsgBacklog)
	assert.Equal(t, "Failover", sub.Type)
	assert.True(t, sub.IsDurable)
	require.Len(t, sub.Consumers, 1)
	assert.Equal(t, "pulsartest-test-client", sub.Consumers[0].ClientVersion)

	// Partitioned statistics add the partitions up.
	a.expect("PUT", "/admin/v2/persistent/public/default/p/partitions", "2", 204, "")
	a.expect("PUT", "/admin/v2/persistent/public/default/p/subscription/ps", `{"ledgerId":-1,"entryId":-1}`, 204, "")
	publish(s, "p-partition-0", "a")
	publish(s, "p-partition-1", "b", "c")
	var ps struct {
		MsgInCounter  int64                     `json:"msgInCounter"`
		Metadata      map[string]any            `json:"metadata"`
		Subscriptions map[string]map[string]any `json:"subscriptions"`
		Partitions    map[string]map[string]any `json:"partitions"`
	}
	a.json("/admin/v2/persistent/public/default/p/partitioned-stats", &ps)
	assert.Equal(t, int64(3), ps.MsgInCounter)
	assert.Equal(t, 2.0, ps.Metadata["partitions"])
	assert.Equal(t, 3.0, ps.Subscriptions["ps"]["msgBacklog"])
	assert.Len(t, ps.Partitions, 2)
	a.expect("GET", "/admin/v2/persistent/public/default/t1/partitioned-stats", "", 404, "Partitioned Topic persistent://public/default/t1 not found")
}

func TestAdminUnload(t *testing.T) {
	s := pulsartest.NewTCP(t)
	a := startAdmin(t, s)
	// The bundles a broker puts these topics in (/lookup/.../bundle).
	const u1, u3 = "persistent://public/default/u1", "persistent://public/default/u3"

	c := attach(t, s, u1)
	a.expect("PUT", "/admin/v2/persistent/public/default/u1/unload", "", 204, "")
	c.expectUnloaded()
	a.expect("PUT", "/admin/v2/persistent/public/default/nosuch/unload", "", 404, "Topic persistent://public/default/nosuch not found")

	c = attach(t, s, u1)
	a.expect("PUT", "/admin/v2/namespaces/public/default/unload", "", 204, "")
	c.expectUnloaded()
	a.expect("PUT", "/admin/v2/namespaces/public/nons/unload", "", 404, "Namespace not found")

	// A bundle unload closes only the topics of that bundle: u3 is in the
	// first of four, u1 in the last.
	c3 := attach(t, s, u3)
	c1 := attach(t, s, u1)
	a.expect("PUT", "/admin/v2/namespaces/public/default/0x00000000_0x40000000/unload", "", 204, "")
	c3.expectUnloaded()
	a.expect("PUT", "/admin/v2/namespaces/public/default/0xc0000000_0xffffffff/unload", "", 204, "")
	c1.expectUnloaded()
	a.expect("PUT", "/admin/v2/namespaces/public/default/0x00000000_0x00000010/unload", "", 412, "")
	var bundles map[string]any
	a.json("/admin/v2/namespaces/public/default/bundles", &bundles)
	assert.Equal(t, 4.0, bundles["numBundles"])
}

// TestBundleOfTopic checks the bundle hash against what a broker
// answered for these names.
func TestBundleOfTopic(t *testing.T) {
	s := pulsartest.NewTCP(t)
	a := startAdmin(t, s)
	want := map[string]string{
		"u1": "0xc0000000_0xffffffff", "u2": "0x40000000_0x80000000", "u3": "0x00000000_0x40000000",
		"alpha": "0x00000000_0x40000000", "beta": "0xc0000000_0xffffffff", "gamma": "0x00000000_0x40000000",
		"delta": "0x40000000_0x80000000", "my-topic-1": "0x40000000_0x80000000", "x": "0x80000000_0xc0000000",
	}
	for topic, bundle := range want {
		r := a.do("GET", "/lookup/v2/topic/persistent/public/default/"+topic+"/bundle", "")
		assert.Equal(t, bundle, r.body, topic)
	}
}

func TestAdminUnknownEndpoint(t *testing.T) {
	s := pulsartest.NewTCP(t)
	a := startAdmin(t, s)
	// A path no endpoint serves gets the servlet container's HTML page,
	// as from a broker; a known endpoint's error is JSON.
	for _, path := range []string{"/admin/v2/nosuch", "/nosuch", "/admin/v2/persistent/public/default/t/nosuch"} {
		r := a.do("GET", path, "")
		assert.Equal(t, 404, r.code, path)
		assert.Equal(t, "text/html;charset=iso-8859-1", r.ctype, path)
		assert.Contains(t, r.body, "HTTP ERROR 404 Not Found", path)
	}
	assert.Equal(t, reply{code: 405}, a.do("DELETE", "/admin/v2/brokers/health", ""))
	r := a.do("GET", "/admin/v2/persistent/public/default/nosuch/stats", "")
	assert.Equal(t, reply{code: 404, body: `{"reason":"Topic persistent://public/default/nosuch not found"}`, ctype: "application/json"}, r)
}

func TestAdminSchemas(t *testing.T) {
	s := pulsartest.NewTCP(t)
	a := startAdmin(t, s)
	const path = "/admin/v2/schemas/public/default/s1/schema"
	a.expect("GET", path, "", 404, "Schema not found")
	r := a.do("POST", path, `{"type":"JSON","schema":"{\"type\":\"record\"}","properties":{"a":"b"}}`)
	require.Equal(t, 200, r.code, r.body)
	assert.JSONEq(t, `{"version":{"version":0}}`, r.body)
	var info map[string]any
	a.json(path, &info)
	assert.Equal(t, map[string]any{
		"version": 0.0, "type": "JSON", "timestamp": 0.0, "data": `{"type":"record"}`, "properties": map[string]any{"a": "b"},
	}, info)
	a.json(path+"/0", &info)
	assert.Equal(t, "JSON", info["type"])
	a.expect("GET", path+"/5", "", 404, "Schema not found")
}

func TestHTTPLookup(t *testing.T) {
	s := pulsartest.NewTCP(t, pulsartest.WithAdvertisedTLSURL("pulsar+ssl://127.0.0.1:1"))
	a := startAdmin(t, s)
	var got map[string]string
	a.json("/lookup/v2/topic/persistent/public/default/t1", &got)
	assert.Equal(t, map[string]string{
		"brokerUrl": s.URL(), "brokerUrlTls": "pulsar+ssl://127.0.0.1:1", "httpUrl": a.base,
		"nativeUrl": s.URL(), "brokerUrlSsl": "",
	}, got)

	// Over TLS, the lookup names the HTTPS URL.
	hs := httptest.NewTLSServer(s.AdminHandler())
	t.Cleanup(hs.Close)
	resp, err := hs.Client().Get(hs.URL + "/lookup/v2/topic/persistent/public/default/t1")
	require.NoError(t, err)
	defer resp.Body.Close()
	var overTLS map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&overTLS))
	assert.Equal(t, hs.URL, overTLS["httpUrlTls"])
	assert.NotContains(t, overTLS, "httpUrl")

	// With auto-creation off, a lookup of an unknown topic fails.
	s2 := pulsartest.NewTCP(t, pulsartest.WithAutoCreateTopics(false))
	a2 := startAdmin(t, s2)
	a2.expect("GET", "/lookup/v2/topic/persistent/public/default/t1", "", 404, "Topic persistent://public/default/t1 not found")
}

func TestClusterAdmin(t *testing.T) {
	c := pulsartest.StartCluster(t, 3)
	hs := httptest.NewServer(c.AdminHandler())
	t.Cleanup(hs.Close)
	a := &admin{t: t, base: hs.URL}
	const topic = "persistent://public/default/ct"
	owner := c.Owner(topic)
	var got map[string]string
	a.json("/lookup/v2/topic/persistent/public/default/ct", &got)
	assert.Equal(t, c.Broker(owner).URL(), got["brokerUrl"])

	// Topics created through the API are seen by every broker.
	a.expect("PUT", "/admin/v2/persistent/public/default/cp/partitions", "4", 204, "")
	var md map[string]any
	a.json("/admin/v2/persistent/public/default/cp/partitions", &md)
	assert.Equal(t, 4.0, md["partitions"])

	// Unload closes the clients at the owner.
	cl := attach(t, c.Broker(owner), topic)
	a.expect("PUT", "/admin/v2/persistent/public/default/ct/unload", "", 204, "")
	cl.expectUnloaded()

	// A broker's own admin API answers for the cluster too: its lookups
	// name the owner.
	other := c.Broker((owner + 1) % 3)
	b := startAdmin(t, other)
	got = nil
	b.json("/lookup/v2/topic/persistent/public/default/ct", &got)
	assert.Equal(t, c.Broker(c.Owner(topic)).URL(), got["brokerUrl"])
}

// TestAdminClientSuiteEndpoints covers what the official Go client's test
// suite calls besides the endpoints above: partitioned topics created
// with the metadata body of admin clients, consumer names and metadata in
// stats, messages by id, and the policies the fake takes but does not
// enforce (publish rate, backlog quota).
func TestAdminClientSuiteEndpoints(t *testing.T) {
	s := pulsartest.NewTCP(t)
	a := startAdmin(t, s)
	const p = "/admin/v2/persistent/public/default/p"
	a.expect("PUT", p+"/partitions", `{"properties":null,"partitions":2}`, 204, "")
	var md map[string]any
	a.json(p+"/partitions", &md)
	assert.Equal(t, 2.0, md["partitions"])

	c := dial(t, s)
	c.handshake()
	sub := subscribeCmd(1, 9, "t1", "my-sub", pulsarpb.CommandSubscribe_Shared, pulsarpb.CommandSubscribe_Earliest)
	sub.Subscribe.ConsumerName = proto.String("cons")
	sub.Subscribe.Metadata = []*pulsarpb.KeyValue{{Key: proto.String("k"), Value: proto.String("v")}}
	sub.Subscribe.ForceTopicCreation = proto.Bool(true)
	c.send(sub)
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	var st struct {
		Subscriptions map[string]struct {
			Consumers []struct {
				ConsumerName string            `json:"consumerName"`
				Metadata     map[string]string `json:"metadata"`
			} `json:"consumers"`
		} `json:"subscriptions"`
	}
	a.json("/admin/v2/persistent/public/default/t1/stats", &st)
	require.Len(t, st.Subscriptions["my-sub"].Consumers, 1)
	assert.Equal(t, "cons", st.Subscriptions["my-sub"].Consumers[0].ConsumerName)
	assert.Equal(t, map[string]string{"k": "v"}, st.Subscriptions["my-sub"].Consumers[0].Metadata)

	// A message by id: its payload, and its id, publish time and
	// properties in headers.
	mdb, err := proto.Marshal(&pulsarpb.MessageMetadata{
		ProducerName: proto.String("x"), SequenceId: proto.Uint64(0), PublishTime: proto.Uint64(42),
		Properties: []*pulsarpb.KeyValue{{Key: proto.String("a"), Value: proto.String("b")}},
	})
	require.NoError(t, err)
	id := s.Publish("t1", mdb, []byte("hello"))
	path := "/admin/v2/persistent/public/default/t1/ledger/" + strconv.FormatUint(id.GetLedgerId(), 10) + "/entry/0"
	req, err := http.NewRequestWithContext(ctx(t), "GET", a.base+path, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "hello", string(body))
	assert.Equal(t, strconv.FormatUint(id.GetLedgerId(), 10)+":0", resp.Header.Get("X-Pulsar-Message-ID"))
	assert.Equal(t, "42", resp.Header.Get("X-Pulsar-Publish-Time"))
	assert.JSONEq(t, `{"a":"b"}`, resp.Header.Get("X-Pulsar-Property"))
	a.expect("GET", "/admin/v2/persistent/public/default/t1/ledger/999/entry/0", "", 404, "Message id not found")

	a.expect("POST", "/admin/v2/persistent/public/default/t1/publishRate", `{"publishThrottlingRateInMsg":1,"publishThrottlingRateInByte":1000}`, 204, "")
	a.expect("POST", "/admin/v2/persistent/public/default/nosuch/publishRate", `{}`, 404, "Topic persistent://public/default/nosuch not found")
	quota := `{"limit":10240,"policy":"producer_request_hold"}`
	a.expect("POST", "/admin/v2/namespaces/public/default/backlogQuota", quota, 204, "")
	var quotas map[string]map[string]any
	a.json("/admin/v2/namespaces/public/default/backlogQuotaMap", &quotas)
	assert.Equal(t, "producer_request_hold", quotas["destination_storage"]["policy"])
	a.expect("DELETE", "/admin/v2/namespaces/public/default/backlogQuota", "", 204, "")
	var after map[string]any
	a.json("/admin/v2/namespaces/public/default/backlogQuotaMap", &after)
	assert.Empty(t, after)
}

func TestAdminTerminate(t *testing.T) {
	s := pulsartest.NewTCP(t)
	a := startAdmin(t, s)
	c := attach(t, s, "persistent://public/default/t1")
	r := a.do("POST", "/admin/v2/persistent/public/default/t1/terminate", "")
	assert.Equal(t, 200, r.code)
	assert.JSONEq(t, `{"ledgerId":1,"entryId":-1,"partitionIndex":-1,"batchIndex":-1,"batchSize":0}`, r.body)
	// As from a broker: the producer is closed, the consumer, which has
	// read everything, told the topic ended; the producer cannot come
	// back.
	assert.Equal(t, uint64(7), c.expect(pulsarpb.BaseCommand_CLOSE_PRODUCER).GetCloseProducer().GetProducerId())
	assert.Equal(t, uint64(9), c.expect(pulsarpb.BaseCommand_REACHED_END_OF_TOPIC).GetReachedEndOfTopic().GetConsumerId())
	c.send(producerCmd(3, 7, "t1", "", pulsarpb.ProducerAccessMode_Shared))
	e := c.expect(pulsarpb.BaseCommand_ERROR).GetError()
	assert.Equal(t, pulsarpb.ServerError_TopicTerminatedError, e.GetError())
	assert.Equal(t, uint64(3), e.GetRequestId())
	a.expect("POST", "/admin/v2/persistent/public/default/nosuch/terminate", "", 404, "Topic persistent://public/default/nosuch not found")
}

func TestAdminBacklogQuotaEnforced(t *testing.T) {
	s := pulsartest.NewTCP(t)
	a := startAdmin(t, s)
	a.expect("POST", "/admin/v2/namespaces/public/default/backlogQuota", `{"limit":"150","policy":"producer_request_hold"}`, 204, "")
	c := attach(t, s, "persistent://public/default/t1") // a subscription keeps the backlog
	payload := strings.Repeat("x", 100)
	for seq := range uint64(2) {
		b, _ := sendFrame(t, 7, seq, payload)
		c.raw(b)
		c.expect(pulsarpb.BaseCommand_SEND_RECEIPT)
	}
	// Over the limit: the next SEND closes the producer, which cannot
	// come back while the backlog stays.
	b, _ := sendFrame(t, 7, 2, payload)
	c.raw(b)
	c.expect(pulsarpb.BaseCommand_CLOSE_PRODUCER)
	c.send(producerCmd(5, 7, "t1", "", pulsarpb.ProducerAccessMode_Shared))
	assert.Equal(t, pulsarpb.ServerError_ProducerBlockedQuotaExceededError, c.expect(pulsarpb.BaseCommand_ERROR).GetError().GetError())
	assert.Len(t, s.Messages("t1"), 2)

	// Once the quota is lifted, it can.
	a.expect("DELETE", "/admin/v2/namespaces/public/default/backlogQuota", "", 204, "")
	c.send(producerCmd(6, 7, "t1", "", pulsarpb.ProducerAccessMode_Shared))
	c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
}
