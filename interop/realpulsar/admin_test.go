package realpulsar

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// adminStep is one HTTP request of the admin agreement test, and what of
// its answer is compared: always the status, the kind of body (JSON, HTML
// or none) and an error's reason; the whole body when body is set.
type adminStep struct {
	method, path, body string
	compareBody        bool
}

// adminAnswer is what is compared of an answer, with the run's unique
// prefix replaced by {p}.
type adminAnswer struct {
	Status int
	Kind   string
	Reason string
	Body   string
}

func (a adminAnswer) String() string {
	s := fmt.Sprintf("%d %s", a.Status, a.Kind)
	if a.Reason != "" {
		s += fmt.Sprintf(" reason=%q", a.Reason)
	}
	if a.Body != "" {
		s += " body=" + a.Body
	}
	return s
}

// runAdminSteps sends the steps to base in order and returns the answers.
func runAdminSteps(t *testing.T, base, prefix string, steps []adminStep) []adminAnswer {
	t.Helper()
	out := make([]adminAnswer, len(steps))
	for i, st := range steps {
		path := strings.ReplaceAll(st.path, "{p}", prefix)
		ctx, cancel := context.WithTimeout(context.Background(), safety)
		req, err := http.NewRequestWithContext(ctx, st.method, base+path, strings.NewReader(st.body))
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatalf("%s %s: %v", st.method, path, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		a := adminAnswer{Status: resp.StatusCode}
		ctype := resp.Header.Get("Content-Type")
		switch {
		case len(b) == 0:
			a.Kind = "empty"
		case strings.HasPrefix(ctype, "text/html"):
			a.Kind = "html"
		case strings.HasPrefix(ctype, "application/json"):
			a.Kind = "json"
			var e struct{ Reason string }
			if json.Unmarshal(b, &e) == nil {
				a.Reason = strings.ReplaceAll(e.Reason, prefix, "{p}")
			}
		default:
			a.Kind = ctype
		}
		if st.compareBody {
			a.Body = strings.ReplaceAll(string(b), prefix, "{p}")
		}
		out[i] = a
	}
	return out
}

// TestAdminAgreesWithBroker sends the same admin API requests to the real
// broker and to pulsartest, on names unique to the run, and compares the
// answers: status, body kind, error reason, and the bodies that do not
// hold ids or times. It is the measurement behind the status codes and
// reasons of pulsartest's admin API.
func TestAdminAgreesWithBroker(t *testing.T) {
	rb := env(t)
	srv := pulsartest.NewTCP(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.StartAdmin(l); err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("rpadmin%d", time.Now().UnixNano())
	const (
		tenant = `{"adminRoles":[],"allowedClusters":["standalone"]}`
		ns     = "/admin/v2/namespaces/{p}-t/ns"
		topics = "/admin/v2/persistent/{p}-t/ns"
		a      = topics + "/a"
		p      = topics + "/p"
	)
	steps := []adminStep{
		{method: "GET", path: "/admin/v2/brokers/health", compareBody: true},
		{method: "DELETE", path: "/admin/v2/brokers/health"},
		{method: "GET", path: "/admin/v2/clusters", compareBody: true},
		{method: "GET", path: "/admin/v2/clusters/nope"},
		{method: "GET", path: "/admin/v2/nosuch"},
		{method: "GET", path: "/nosuch"},
		{method: "PUT", path: "/admin/v2/tenants/{p}-t", body: tenant},
		{method: "PUT", path: "/admin/v2/tenants/{p}-t", body: tenant},
		{method: "GET", path: "/admin/v2/tenants/{p}-t", compareBody: true},
		{method: "PUT", path: "/admin/v2/tenants/{p}-t2", body: `{"adminRoles":[],"allowedClusters":["nope"]}`},
		{method: "PUT", path: "/admin/v2/tenants/{p}-t3"},
		{method: "PUT", path: ns},
		{method: "PUT", path: ns},
		{method: "PUT", path: "/admin/v2/namespaces/{p}-nosuch/ns"},
		{method: "GET", path: "/admin/v2/namespaces/{p}-t", compareBody: true},
		{method: "GET", path: "/admin/v2/namespaces/{p}-nosuch"},
		{method: "DELETE", path: "/admin/v2/tenants/{p}-t"},
		{method: "GET", path: ns + "/bundles", compareBody: true},
		{method: "GET", path: "/admin/v2/namespaces/{p}-t/nons/topics?mode=PERSISTENT"},
		{method: "PUT", path: a},
		{method: "PUT", path: a},
		{method: "PUT", path: "/admin/v2/persistent/{p}-t/nons/a"},
		{method: "PUT", path: p + "/partitions", body: "3"},
		{method: "PUT", path: p + "/partitions", body: "3"},
		{method: "PUT", path: topics + "/z/partitions", body: "0"},
		{method: "GET", path: p + "/partitions", compareBody: true},
		{method: "GET", path: a + "/partitions", compareBody: true},
		{method: "GET", path: topics + "/nosuch/partitions"},
		{method: "GET", path: topics + "/nosuch/partitions?checkAllowAutoCreation=true", compareBody: true},
		{method: "GET", path: topics, compareBody: true},
		{method: "GET", path: topics + "/partitioned", compareBody: true},
		{method: "GET", path: ns + "/topics?mode=PERSISTENT", compareBody: true},
		{method: "POST", path: p + "/partitions", body: "2"},
		{method: "POST", path: p + "/partitions", body: "4"},
		{method: "POST", path: a + "/partitions", body: "4"},
		{method: "GET", path: p + "/partitions", compareBody: true},
		{method: "PUT", path: a + "/subscription/s"},
		{method: "PUT", path: a + "/subscription/s"},
		{method: "PUT", path: a + "/subscription/s2", body: `{"ledgerId":-1,"entryId":-1}`},
		{method: "GET", path: a + "/subscriptions", compareBody: true},
		{method: "PUT", path: p + "/subscription/ps"},
		{method: "GET", path: p + "/subscriptions", compareBody: true},
		{method: "DELETE", path: a + "/subscription/nosub"},
		{method: "DELETE", path: a + "/subscription/s2"},
		{method: "POST", path: a + "/subscription/s/resetcursor/0"},
		{method: "POST", path: a + "/subscription/nosub/resetcursor/0"},
		{method: "POST", path: a + "/subscription/s/resetcursor", body: `{"ledgerId":-1,"entryId":-1}`},
		{method: "POST", path: topics + "/nosuch/subscription/s/resetcursor/0"},
		{method: "GET", path: a + "/stats"},
		{method: "GET", path: topics + "/nosuch/stats"},
		{method: "GET", path: p + "/partitioned-stats"},
		{method: "GET", path: a + "/partitioned-stats"},
		{method: "PUT", path: a + "/unload"},
		{method: "PUT", path: topics + "/nosuch/unload"},
		{method: "PUT", path: ns + "/unload"},
		{method: "PUT", path: ns + "/0x00000000_0x40000000/unload"},
		{method: "PUT", path: ns + "/0x00000000_0x00000010/unload"},
		{method: "PUT", path: "/admin/v2/namespaces/{p}-t/nons/unload"},
		{method: "GET", path: "/lookup/v2/topic/persistent/{p}-t/ns/a/bundle", compareBody: true},
		{method: "GET", path: "/lookup/v2/topic/persistent/{p}-t/ns/b/bundle", compareBody: true},
		{method: "GET", path: "/admin/v2/schemas/{p}-t/ns/a/schema"},
		{method: "POST", path: "/admin/v2/schemas/{p}-t/ns/a/schema", body: `{"type":"STRING","schema":"","properties":{}}`, compareBody: true},
		{method: "GET", path: "/admin/v2/schemas/{p}-t/ns/a/schema/5"},
		{method: "POST", path: a + "/publishRate", body: `{"publishThrottlingRateInMsg":1}`},
		{method: "POST", path: topics + "/nosuch/publishRate", body: `{"publishThrottlingRateInMsg":1}`},
		{method: "POST", path: ns + "/backlogQuota", body: `{"limit":"10240","policy":"producer_request_hold"}`},
		{method: "DELETE", path: ns + "/backlogQuota"},
		{method: "GET", path: ns + "/backlogQuotaMap", compareBody: true},
		{method: "POST", path: a + "/terminate"},
		{method: "POST", path: topics + "/nosuch/terminate"},
		{method: "GET", path: a + "/ledger/999/entry/0"},
		{method: "DELETE", path: p},
		{method: "DELETE", path: a + "/partitions"},
		{method: "DELETE", path: topics + "/nosuch/partitions"},
		{method: "DELETE", path: p + "/partitions"},
		{method: "DELETE", path: ns},
		{method: "DELETE", path: a},
		{method: "DELETE", path: topics + "/nosuch"},
		{method: "DELETE", path: ns},
		{method: "DELETE", path: ns},
		{method: "DELETE", path: "/admin/v2/tenants/{p}-t"},
		{method: "DELETE", path: "/admin/v2/tenants/{p}-t"},
		{method: "GET", path: "/admin/v2/tenants/{p}-t"},
	}
	real := runAdminSteps(t, strings.TrimSuffix(rb.AdminURL, "/"), prefix, steps)
	fake := runAdminSteps(t, srv.AdminURL(), prefix, steps)
	agree := 0
	for i, st := range steps {
		if real[i] == fake[i] {
			agree++
			continue
		}
		t.Errorf("%s %s:\n  real broker: %v\n  pulsartest:  %v", st.method, st.path, real[i], fake[i])
	}
	t.Logf("%d of %d admin answers agree", agree, len(steps))
}

// TestAdminUnloadAgreesWithBroker attaches a producer and a consumer to a
// topic of each broker, then asks the admin API to delete the topic and
// its subscription without force (refused while they are attached) and to
// unload it, and compares what each broker answered and pushed: on
// unload a standalone broker closes both, naming no broker to go to.
func TestAdminUnloadAgreesWithBroker(t *testing.T) {
	rb := env(t)
	srv := pulsartest.NewTCP(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.StartAdmin(l); err != nil {
		t.Fatal(err)
	}
	run := func(serviceURL, adminURL string) []string {
		ctx := bounded(t)
		b := start(t, serviceURL)
		short := topicName(t)
		topic := fullName(short)
		ppushes, ph := pushes(4)
		pid := b.NewProducerID()
		if _, err := b.RegisterProducer(ctx, pid, ph); err != nil {
			t.Fatal(err)
		}
		if _, err := createProducer(ctx, b, b.Connection(), pid, topic); err != nil {
			t.Fatal(err)
		}
		cpushes, ch := pushes(4)
		cid := b.NewConsumerID()
		if _, err := b.RegisterConsumer(ctx, cid, ch); err != nil {
			t.Fatal(err)
		}
		if err := subscribe(ctx, b, cid, topic, "sub", pulsarpb.CommandSubscribe_Shared); err != nil {
			t.Fatal(err)
		}
		base := "/admin/v2/persistent/public/default/" + short
		answers := runAdminSteps(t, strings.TrimSuffix(adminURL, "/"), short, []adminStep{
			{method: "DELETE", path: base},
			{method: "DELETE", path: base + "/subscription/sub"},
			{method: "PUT", path: base + "/unload"},
		})
		var out []string
		for _, a := range answers {
			out = append(out, a.String())
		}
		for _, c := range []struct {
			name string
			ch   chan pulsarconn.Push
		}{{"producer", ppushes}, {"consumer", cpushes}} {
			name, ch := c.name, c.ch
			p := next(t, ch, name+"'s close")
			out = append(out, fmt.Sprintf("%s: %v %v url=%q tls=%q", name, p.Kind, p.Command.GetType(), p.BrokerURL, p.BrokerURLTLS))
		}
		return out
	}
	real := run(rb.ServiceURL, rb.AdminURL)
	fake := run(srv.URL(), srv.AdminURL())
	if !slices.Equal(real, fake) {
		t.Fatalf("real broker:\n  %s\npulsartest:\n  %s", strings.Join(real, "\n  "), strings.Join(fake, "\n  "))
	}
	t.Logf("both:\n  %s", strings.Join(real, "\n  "))
}

// TestAdminStatsAgreeWithBroker publishes two messages to a topic with a
// Shared consumer (no permits) on each broker and compares their /stats:
// every field pulsartest reports must be one the broker reports, of the
// same JSON kind, and the counters and states both can know must be equal.
func TestAdminStatsAgreeWithBroker(t *testing.T) {
	rb := env(t)
	srv := pulsartest.NewTCP(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.StartAdmin(l); err != nil {
		t.Fatal(err)
	}
	var stored [2]float64 // bytes of the entries sent to each broker, as stored
	run := func(serviceURL, adminURL string, stored *float64) map[string]any {
		ctx := bounded(t)
		b := start(t, serviceURL)
		short := topicName(t)
		topic := fullName(short)
		receipts, ph := pushes(4)
		pid := b.NewProducerID()
		if _, err := b.RegisterProducer(ctx, pid, ph); err != nil {
			t.Fatal(err)
		}
		ok, err := createProducer(ctx, b, b.Connection(), pid, topic)
		if err != nil {
			t.Fatal(err)
		}
		_, ch := pushes(4)
		cid := b.NewConsumerID()
		if _, err := b.RegisterConsumer(ctx, cid, ch); err != nil {
			t.Fatal(err)
		}
		if err := subscribe(ctx, b, cid, topic, "sub", pulsarpb.CommandSubscribe_Shared); err != nil {
			t.Fatal(err)
		}
		for seq := range uint64(2) {
			f := sendFrame(t, pid, seq, ok.GetProducerName(), []byte("hello"))
			// The entry is what follows the command: checksum, metadata
			// size, metadata, payload.
			*stored += float64(len(f) - 8 - int(binary.BigEndian.Uint32(f[4:8])))
			if err := b.PublishMessageOn(ctx, b.Connection(), f); err != nil {
				t.Fatal(err)
			}
			if p := next(t, receipts, "receipt"); p.Kind != pulsarconn.PushReceipt {
				t.Fatalf("push %v, want a receipt", p.Kind)
			}
		}
		req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimSuffix(adminURL, "/")+"/admin/v2/persistent/public/default/"+short+"/stats", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	real := run(rb.ServiceURL, rb.AdminURL, &stored[0])
	fake := run(srv.URL(), srv.AdminURL(), &stored[1])

	kind := func(v any) string { return fmt.Sprintf("%T", v) }
	var walk func(path string, f, r any)
	walk = func(path string, f, r any) {
		if kind(f) != kind(r) {
			t.Errorf("%s: pulsartest %s %v, real broker %s %v", path, kind(f), f, kind(r), r)
			return
		}
		switch fv := f.(type) {
		case map[string]any:
			rv := r.(map[string]any)
			for k, v := range fv {
				if _, found := rv[k]; !found {
					t.Errorf("%s.%s: reported by pulsartest, not by the real broker", path, k)
					continue
				}
				walk(path+"."+k, v, rv[k])
			}
		case []any:
			rv := r.([]any)
			if len(fv) != len(rv) {
				t.Errorf("%s: %d elements in pulsartest, %d in the real broker", path, len(fv), len(rv))
				return
			}
			for i := range fv {
				walk(fmt.Sprintf("%s[%d]", path, i), fv[i], rv[i])
			}
		}
	}
	walk("stats", fake, real)
	for i, st := range []map[string]any{real, fake} {
		for _, k := range []string{"bytesInCounter", "storageSize"} {
			if st[k] != stored[i] {
				t.Errorf("%s of %s: %v, want %v, the bytes of the entries", k, []string{"the real broker", "pulsartest"}[i], st[k], stored[i])
			}
		}
	}

	// The values both can know.
	pick := func(st map[string]any) map[string]any {
		sub := st["subscriptions"].(map[string]any)["sub"].(map[string]any)
		pub := st["publishers"].([]any)[0].(map[string]any)
		cons := sub["consumers"].([]any)[0].(map[string]any)
		return map[string]any{
			"msgInCounter": st["msgInCounter"], "waitingPublishers": st["waitingPublishers"],
			"deduplicationStatus": st["deduplicationStatus"],
			"accessMode":          pub["accessMode"], "producerName": pub["producerName"] != "",
			"msgBacklog": sub["msgBacklog"], "msgBacklogNoDelayed": sub["msgBacklogNoDelayed"],
			"unackedMessages": sub["unackedMessages"], "type": sub["type"], "isDurable": sub["isDurable"],
			"availablePermits": cons["availablePermits"], "consumerUnacked": cons["unackedMessages"],
		}
	}
	if r, f := pick(real), pick(fake); fmt.Sprint(r) != fmt.Sprint(f) {
		t.Errorf("values differ:\n  real broker: %v\n  pulsartest:  %v", r, f)
	}
}
