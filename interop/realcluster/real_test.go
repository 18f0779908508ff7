package realcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// restartWithin bounds `pulsar-cluster.sh start-broker N`, which waits
// until the broker answers.
const restartWithin = 5 * time.Minute

// realCluster is the cluster scripts/pulsar-cluster.sh started, as its
// `env` printed it (see the package documentation).
type realCluster struct {
	err     string   // a variable missing or malformed
	brokers []string // PULSAR_CLUSTER_BROKERS
	admins  []string // PULSAR_CLUSTER_ADMIN_URLS, same order
	pids    []string // PULSAR_CLUSTER_BROKER_PIDS, same order
	proxy   string   // PULSAR_CLUSTER_PROXY_URL
	name    string   // PULSAR_CLUSTER_NAME
	ctl     string   // PULSAR_CLUSTER_CTL

	mu   sync.Mutex
	dead map[int]bool // brokers killed and not started again
}

func readEnv() *realCluster {
	rc := &realCluster{
		brokers: strings.Fields(os.Getenv("PULSAR_CLUSTER_BROKERS")),
		admins:  strings.Fields(os.Getenv("PULSAR_CLUSTER_ADMIN_URLS")),
		pids:    strings.Fields(os.Getenv("PULSAR_CLUSTER_BROKER_PIDS")),
		proxy:   os.Getenv("PULSAR_CLUSTER_PROXY_URL"),
		name:    os.Getenv("PULSAR_CLUSTER_NAME"),
		ctl:     os.Getenv("PULSAR_CLUSTER_CTL"),
		dead:    make(map[int]bool),
	}
	switch {
	case len(rc.brokers) < 2:
		rc.err = "PULSAR_CLUSTER_BROKERS names fewer than two brokers"
	case len(rc.admins) != len(rc.brokers) || len(rc.pids) != len(rc.brokers):
		rc.err = "PULSAR_CLUSTER_ADMIN_URLS and PULSAR_CLUSTER_BROKER_PIDS must name as many brokers as PULSAR_CLUSTER_BROKERS"
	case rc.proxy == "" || rc.name == "" || rc.ctl == "":
		rc.err = "PULSAR_CLUSTER_PROXY_URL, PULSAR_CLUSTER_NAME and PULSAR_CLUSTER_CTL must be set (eval \"$(bash scripts/pulsar-cluster.sh env)\")"
	}
	return rc
}

func (rc *realCluster) ServiceURL() string   { return multiHost(rc.brokers) }
func (rc *realCluster) ProxyURL() string     { return rc.proxy }
func (rc *realCluster) BrokerURLs() []string { return rc.brokers }

// admin calls the admin REST API of a live broker (a broker answers for
// the whole cluster, redirecting to the owner where it must; the HTTP
// client follows) and returns the body of a 2xx answer.
func (rc *realCluster) admin(t testing.TB, method, path string, body any) []byte {
	t.Helper()
	rc.mu.Lock()
	base := ""
	for i, a := range rc.admins {
		if !rc.dead[i] {
			base = a
			break
		}
	}
	rc.mu.Unlock()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(base, "/")+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s: %s", method, path, resp.Status, out)
	}
	return out
}

// topicPath is "persistent/tenant/namespace/local" for a topic named
// persistent://tenant/namespace/local.
func topicPath(t testing.TB, topic string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(topic, "persistent://")
	if !ok || strings.Count(rest, "/") != 2 {
		t.Fatalf("topic %q: want persistent://tenant/namespace/topic", topic)
	}
	parts := strings.Split(rest, "/")
	for i := range parts {
		parts[i] = url.PathEscape(parts[i])
	}
	return "persistent/" + strings.Join(parts, "/")
}

// Owner asks the cluster's HTTP lookup (GET /lookup/v2/topic/...), which
// assigns the bundle if no broker owns it yet, as a binary LOOKUP does.
func (rc *realCluster) Owner(t testing.TB, topic string) string {
	t.Helper()
	var data struct {
		BrokerURL string `json:"brokerUrl"`
	}
	b := rc.admin(t, http.MethodGet, "/lookup/v2/topic/"+topicPath(t, topic), nil)
	if err := json.Unmarshal(b, &data); err != nil || data.BrokerURL == "" {
		t.Fatalf("lookup of %s answered %s (%v)", topic, b, err)
	}
	return canonical(t, data.BrokerURL)
}

// bundle returns the range of the namespace bundle that holds topic,
// "0x00000000_0x10000000".
func (rc *realCluster) bundle(t testing.TB, topic string) string {
	t.Helper()
	b := rc.admin(t, http.MethodGet, "/lookup/v2/topic/"+topicPath(t, topic)+"/bundle", nil)
	return strings.Trim(strings.TrimSpace(string(b)), `"`)
}

// Unload unloads the bundle that holds topic (PUT
// /admin/v2/namespaces/{tenant}/{namespace}/{bundle}/unload): its owner
// closes the topics' producers and consumers, and the next lookup
// assigns the bundle again. It names the other live broker as the
// destination (destinationBroker, the broker's host and HTTP port): a
// plain unload on an idle cluster let the load manager give the bundle
// back to the same broker 6 times out of 6; with a destination it moved
// 7 times out of 9. The load manager may still keep it where it was.
func (rc *realCluster) Unload(t testing.TB, topic string) {
	t.Helper()
	// A bundle no broker owns (unloaded already through another of its
	// topics) is assigned first, so that there is something to unload.
	owner := rc.Owner(t, topic)
	ns := strings.Join(strings.Split(strings.TrimPrefix(topic, "persistent://"), "/")[:2], "/")
	path := "/admin/v2/namespaces/" + ns + "/" + rc.bundle(t, topic) + "/unload"
	rc.mu.Lock()
	for i, b := range rc.brokers {
		if canonical(t, b) != owner && !rc.dead[i] {
			if u, err := url.Parse(rc.admins[i]); err == nil {
				path += "?destinationBroker=" + url.QueryEscape(u.Host)
			}
			break
		}
	}
	rc.mu.Unlock()
	rc.admin(t, http.MethodPut, path, nil)
}

// pid reads broker i's pid file.
func (rc *realCluster) pid(t testing.TB, i int) int {
	t.Helper()
	b, err := os.ReadFile(rc.pids[i])
	if err != nil {
		t.Fatalf("read %s: %v", rc.pids[i], err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Fatalf("%s holds %q, not a pid", rc.pids[i], b)
	}
	return pid
}

// Kill is kill -9 of broker i (its process group, or the process should
// it lead none), and waits until the process is gone. When the test ends
// with the broker still dead, it is started again.
func (rc *realCluster) Kill(t testing.TB, i int) {
	t.Helper()
	pid := rc.pid(t, i)
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 broker %d (pid %d): %v", i+1, pid, err)
		}
	}
	rc.mu.Lock()
	rc.dead[i] = true
	rc.mu.Unlock()
	t.Cleanup(func() {
		rc.mu.Lock()
		dead := rc.dead[i]
		rc.mu.Unlock()
		if dead {
			t.Logf("the test ended with broker %d killed: starting it again", i+1)
			rc.Restart(t, i)
		}
	})
	// Wait until the process is gone or a zombie: a real, external wait,
	// polled.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for alive(pid) {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("broker %d (pid %d) still there 30s after kill -9", i+1, pid)
		}
	}
}

// alive reports whether process pid exists and is not a zombie (a
// killed process whose parent has not reaped it yet, as a container's
// init may never do).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil // no /proc: signal 0 answers
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	_, rest, ok := strings.Cut(string(b[bytes.LastIndexByte(b, ')')+1:]), " ")
	return !ok || !strings.HasPrefix(rest, "Z")
}

// Restart runs `pulsar-cluster.sh start-broker N`, which starts broker i
// again on the same ports and waits until it answers.
func (rc *realCluster) Restart(t testing.TB, i int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), restartWithin)
	defer cancel()
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, "bash", rc.ctl, "start-broker", strconv.Itoa(i+1)).CombinedOutput()
	if err != nil {
		t.Fatalf("pulsar-cluster.sh start-broker %d: %v\n%s", i+1, err, out)
	}
	rc.mu.Lock()
	delete(rc.dead, i)
	rc.mu.Unlock()
	t.Logf("broker %d started again in %v", i+1, time.Since(t0).Round(100*time.Millisecond))
}

// NewNamespace creates public/c-<random> with 16 bundles, replicated in
// this cluster only (PUT /admin/v2/namespaces/{tenant}/{namespace} with
// its policies).
func (rc *realCluster) NewNamespace(t testing.TB) string {
	t.Helper()
	ns := "public/c-" + randomName()
	rc.admin(t, http.MethodPut, "/admin/v2/namespaces/"+ns, map[string]any{
		"bundles":              map[string]any{"numBundles": 16},
		"replication_clusters": []string{rc.name},
	})
	var bundles struct {
		Boundaries []string `json:"boundaries"`
		NumBundles int      `json:"numBundles"`
	}
	b := rc.admin(t, http.MethodGet, "/admin/v2/namespaces/"+ns+"/bundles", nil)
	if err := json.Unmarshal(b, &bundles); err != nil || bundles.NumBundles != 16 {
		t.Fatalf("namespace %s: bundles %s (%v), want 16", ns, b, err)
	}
	return ns
}
