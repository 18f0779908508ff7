package pulsartest

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// This file is the HTTP side of a broker: the admin REST API (v2) that
// test suites call to set topics up, and the HTTP lookup service of
// httplookup.go. Status codes and error bodies are those an Apache Pulsar
// 4.2 standalone broker answers: an error is {"reason": "..."} with the
// broker's message, an unknown path the servlet container's HTML 404
// page. docs/pulsartest.md lists the endpoints.

// ClusterName is the name of the one cluster the admin API reports, that
// of a standalone broker.
const ClusterName = "standalone"

// adminMeta is what the admin API knows beyond the topics: tenants and
// namespaces created by it. Guarded by the server's mu; the brokers of a
// Cluster share the Cluster's.
type adminMeta struct {
	tenants    map[string]tenantInfo
	namespaces map[string]bool // "tenant/ns"
	// quotas are the backlog quotas set, by namespace and quota type;
	// kept and reported, not enforced.
	quotas map[string]map[string]json.RawMessage
	// terminated are the topics terminated (full names).
	terminated map[string]bool
	// servers are the HTTP servers StartAdmin started, closed by Close.
	servers []*http.Server
	addr    string // the first one's address
}

// tenantInfo is a tenant's TenantInfo, as the admin API takes and gives
// it.
type tenantInfo struct {
	AdminRoles      []string `json:"adminRoles"`
	AllowedClusters []string `json:"allowedClusters"`
}

// init creates the tenants and namespaces a standalone broker starts
// with: public/default and pulsar/system.
func (m *adminMeta) init() *adminMeta {
	if m.tenants == nil {
		all := []string{ClusterName}
		m.tenants = map[string]tenantInfo{
			"public": {AdminRoles: []string{}, AllowedClusters: all},
			"pulsar": {AdminRoles: []string{}, AllowedClusters: all},
		}
		m.namespaces = map[string]bool{"public/default": true, "pulsar/system": true}
	}
	return m
}

// adminMetaLocked is the admin state of the server, or of its cluster.
func (s *Server) adminMetaLocked() *adminMeta {
	if c := s.x.cluster; c != nil {
		return c.admin.init()
	}
	return s.x.admin.init()
}

// closeAdminLocked closes the HTTP servers of StartAdmin; called by
// Close. (It does not wait for handlers: those that wait for mu find the
// server closed.)
func (x *serverExt) closeAdminLocked() {
	for _, hs := range x.admin.servers {
		_ = hs.Close()
	}
	x.admin.servers = nil
}

// AdminHandler returns the broker's HTTP side as an http.Handler: the
// admin REST API (/admin/v2/...) and the HTTP lookup service
// (/lookup/v2/topic/...), so that an http:// service URL works in
// clients. Serve it with StartAdmin, net/http/httptest or any
// http.Server. Lookups name this server's URL (on a broker of a Cluster,
// the owner's, as Cluster.AdminHandler does); the httpUrl they report is
// the request's host.
func (s *Server) AdminHandler() http.Handler {
	return &adminHandler{mu: s.mu, store: func() *Server { return s }, srv: s, cluster: s.x.cluster}
}

// AdminHandler returns the cluster's HTTP side, as Server.AdminHandler
// does for one broker: every broker shares it, lookups name the owner of
// the topic, and unloading a topic lets its ownership go (see Unload).
func (c *Cluster) AdminHandler() http.Handler {
	return &adminHandler{mu: c.mu, store: func() *Server { return c.brokers[0] }, cluster: c}
}

// StartAdmin serves AdminHandler on l in the background (for example a
// TCP listener on 127.0.0.1:0) until Close, which closes l. AdminURL then
// reports it.
func (s *Server) StartAdmin(l net.Listener) error {
	hs := &http.Server{Handler: s.AdminHandler()}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = l.Close()
		return ErrServerClosed
	}
	s.x.admin.servers = append(s.x.admin.servers, hs)
	if s.x.admin.addr == "" {
		s.x.admin.addr = l.Addr().String()
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		_ = hs.Serve(l)
	}()
	return nil
}

// AdminURL returns "http://" and the address of the first listener given
// to StartAdmin, or "" when there was none: the webServiceUrl of clients
// and admin tools, and a service URL for clients that look topics up over
// HTTP.
func (s *Server) AdminURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.x.admin.addr == "" {
		return ""
	}
	return "http://" + s.x.admin.addr
}

// adminHandler serves the HTTP side of a server or cluster.
type adminHandler struct {
	mu *sync.Mutex
	// store returns a server holding the shared topics (mu held).
	store   func() *Server
	srv     *Server  // the server it serves, nil for Cluster.AdminHandler
	cluster *Cluster // the cluster of the server, if any
}

// answer is an HTTP response: a status, and a body encoded as JSON
// unless raw is set.
type answer struct {
	code   int
	body   any
	raw    []byte
	ctype  string
	header map[string]string
}

// noContent is a broker's answer to a change done: 204, no body.
func noContent() answer { return answer{code: http.StatusNoContent} }

// okJSON is 200 with body as JSON.
func okJSON(body any) answer { return answer{code: http.StatusOK, body: body} }

// fail is a broker's error answer: code, and {"reason": reason}.
func fail(code int, reason string) answer {
	return answer{code: code, body: map[string]string{"reason": reason}}
}

// notFoundPage is what a broker's servlet container answers for a path no
// endpoint serves: an HTML page, not JSON.
func notFoundPage(path string, code int, msg string) answer {
	page := fmt.Sprintf("<html>\n<head>\n<title>Error %d %s</title>\n</head>\n<body><h2>HTTP ERROR %d %s</h2>\n<p>URI: %s</p>\n</body>\n</html>\n",
		code, msg, code, msg, html.EscapeString(path))
	return answer{code: code, raw: []byte(page), ctype: "text/html;charset=iso-8859-1"}
}

func (h *adminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	req := &adminRequest{r: r, body: body, seg: splitPath(r.URL.EscapedPath())}
	h.mu.Lock()
	if h.srv != nil {
		if h.srv.closed {
			h.mu.Unlock()
			http.Error(w, "server closed", http.StatusServiceUnavailable)
			return
		}
		h.srv.wg.Add(1)
		defer h.srv.wg.Done()
	} else if h.cluster.closed {
		h.mu.Unlock()
		http.Error(w, "cluster closed", http.StatusServiceUnavailable)
		return
	}
	a := h.route(req)
	h.mu.Unlock()
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	switch {
	case a.raw != nil:
		w.Header().Set("Content-Type", a.ctype)
		w.WriteHeader(a.code)
		_, _ = w.Write(a.raw)
	case a.body != nil:
		b, err := json.Marshal(a.body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.code)
		_, _ = w.Write(b)
	default:
		w.WriteHeader(a.code)
	}
}

// adminRequest is a request being routed.
type adminRequest struct {
	r    *http.Request
	body []byte
	seg  []string
}

func (q *adminRequest) query(k string) string { return q.r.URL.Query().Get(k) }

func (q *adminRequest) force() bool { return q.query("force") == "true" }

// splitPath splits an escaped path into its unescaped segments, dropping
// empty ones (a broker's servlet container takes "a//b" as "a/b").
func splitPath(p string) []string {
	var seg []string
	for _, s := range strings.Split(p, "/") {
		if s == "" {
			continue
		}
		if u, err := url.PathUnescape(s); err == nil {
			s = u
		}
		seg = append(seg, s)
	}
	return seg
}

// route dispatches a request, with mu held.
func (h *adminHandler) route(q *adminRequest) answer {
	seg := q.seg
	notFound := notFoundPage(q.r.URL.Path, http.StatusNotFound, "Not Found")
	if len(seg) >= 3 && seg[0] == "lookup" && seg[1] == "v2" && seg[2] == "topic" {
		return h.lookupRoute(q, notFound)
	}
	if len(seg) < 3 || seg[0] != "admin" || seg[1] != "v2" {
		return notFound
	}
	var a *answer
	switch seg[2] {
	case "brokers":
		a = h.brokersRoute(q)
	case "clusters":
		a = h.clustersRoute(q)
	case "tenants":
		a = h.tenantsRoute(q)
	case "namespaces":
		a = h.namespacesRoute(q)
	case "persistent", "non-persistent":
		a = h.topicsRoute(q)
	case "schemas":
		a = h.schemasRoute(q)
	}
	if a == nil {
		return notFound
	}
	return *a
}

// method answers 405 (with no body) unless the request's method is one of those the
// endpoint takes, and returns the answer of the handler for it.
func method(q *adminRequest, handlers map[string]func() answer) *answer {
	f := handlers[q.r.Method]
	if f == nil {
		a := answer{code: http.StatusMethodNotAllowed} // with no body, as from a broker
		return &a
	}
	a := f()
	return &a
}

func (h *adminHandler) brokersRoute(q *adminRequest) *answer {
	seg := q.seg
	if len(seg) != 4 {
		return nil
	}
	switch seg[3] {
	case "health", "ready":
		// A broker answers "ok", as application/json.
		return method(q, map[string]func() answer{"GET": func() answer {
			return answer{code: http.StatusOK, raw: []byte("ok"), ctype: "application/json"}
		}})
	case ClusterName:
		return method(q, map[string]func() answer{"GET": func() answer { return okJSON([]string{q.r.Host}) }})
	}
	return nil
}

func (h *adminHandler) clustersRoute(q *adminRequest) *answer {
	seg := q.seg
	switch len(seg) {
	case 3:
		return method(q, map[string]func() answer{"GET": func() answer { return okJSON([]string{ClusterName}) }})
	case 4:
		return method(q, map[string]func() answer{"GET": func() answer {
			if seg[3] != ClusterName {
				return fail(http.StatusNotFound, "Cluster does not exist")
			}
			s := h.store()
			data := map[string]any{
				"serviceUrl":       "http://" + q.r.Host,
				"brokerServiceUrl": h.serviceURLLocked(),
			}
			if tls := s.cfg.advertisedURLTLS; tls != "" {
				data["brokerServiceUrlTls"] = tls
			}
			return okJSON(data)
		}})
	}
	return nil
}

// serviceURLLocked is the URL clients start from: the cluster's (its
// proxy's, or first broker's), or the server's.
func (h *adminHandler) serviceURLLocked() string {
	if c := h.cluster; c != nil {
		if c.proxy != nil {
			return c.proxy.urlLocked()
		}
		return c.brokers[0].urlLocked()
	}
	return h.srv.urlLocked()
}

func (h *adminHandler) tenantsRoute(q *adminRequest) *answer {
	seg := q.seg
	s := h.store()
	m := s.adminMetaLocked()
	switch len(seg) {
	case 3:
		return method(q, map[string]func() answer{"GET": func() answer { return okJSON(s.tenantsLocked()) }})
	case 4:
		name := seg[3]
		return method(q, map[string]func() answer{
			"GET": func() answer {
				info, found := m.tenants[name]
				if !found {
					if !slices.Contains(s.tenantsLocked(), name) {
						return fail(http.StatusNotFound, "Tenant does not exist")
					}
					info = tenantInfo{AdminRoles: []string{}, AllowedClusters: []string{ClusterName}}
				}
				return okJSON(info)
			},
			"PUT": func() answer {
				if slices.Contains(s.tenantsLocked(), name) {
					return fail(http.StatusConflict, "Tenant already exist")
				}
				var info *tenantInfo
				if err := json.Unmarshal(q.body, &info); err != nil && len(q.body) > 0 {
					return badJSON(err)
				}
				if info == nil {
					return fail(http.StatusPreconditionFailed, "TenantInfo is null")
				}
				for _, c := range info.AllowedClusters {
					if c != ClusterName {
						return fail(http.StatusPreconditionFailed, "Clusters do not exist")
					}
				}
				if info.AdminRoles == nil {
					info.AdminRoles = []string{}
				}
				if info.AllowedClusters == nil {
					info.AllowedClusters = []string{}
				}
				m.tenants[name] = *info
				return noContent()
			},
			"DELETE": func() answer {
				if !slices.Contains(s.tenantsLocked(), name) {
					return fail(http.StatusNotFound, "Tenant doesn't exist")
				}
				if len(s.namespacesLocked(name)) > 0 {
					return fail(http.StatusConflict, "The tenant still has active namespaces")
				}
				delete(m.tenants, name)
				return noContent()
			},
		})
	}
	return nil
}

// badJSON is a broker's answer to a body it cannot read.
func badJSON(err error) answer {
	return answer{code: http.StatusBadRequest, raw: []byte(err.Error()), ctype: "text/plain"}
}

// tenantsLocked lists the tenants: those created, and those of topics.
func (s *Server) tenantsLocked() []string {
	m := s.adminMetaLocked()
	var out []string
	for t := range m.tenants {
		out = append(out, t)
	}
	for _, ns := range s.topicNamespacesLocked() {
		t, _, _ := strings.Cut(ns, "/")
		out = append(out, t)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// topicNamespacesLocked lists the namespaces ("tenant/ns") of the topics
// known: a client may use a namespace the admin API never created.
func (s *Server) topicNamespacesLocked() []string {
	var out []string
	add := func(full string) {
		if ns, ok := namespaceOf(full); ok {
			out = append(out, ns)
		}
	}
	for name := range s.topics {
		add(name)
	}
	for name := range s.partitions {
		add(name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// namespaceOf returns "tenant/ns" of a full topic name.
func namespaceOf(full string) (string, bool) {
	_, rest, ok := strings.Cut(full, "://")
	if !ok {
		return "", false
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) < 3 {
		return "", false
	}
	return parts[0] + "/" + parts[1], true
}

// namespacesLocked lists the namespaces of a tenant.
func (s *Server) namespacesLocked(tenant string) []string {
	m := s.adminMetaLocked()
	var out []string
	for ns := range m.namespaces {
		if strings.HasPrefix(ns, tenant+"/") {
			out = append(out, ns)
		}
	}
	for _, ns := range s.topicNamespacesLocked() {
		if strings.HasPrefix(ns, tenant+"/") {
			out = append(out, ns)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// namespaceExistsLocked reports whether a namespace ("tenant/ns") exists:
// created, or holding topics.
func (s *Server) namespaceExistsLocked(ns string) bool {
	t, _, _ := strings.Cut(ns, "/")
	return slices.Contains(s.namespacesLocked(t), ns)
}

func (h *adminHandler) namespacesRoute(q *adminRequest) *answer {
	seg := q.seg
	s := h.store()
	m := s.adminMetaLocked()
	if len(seg) == 4 {
		return method(q, map[string]func() answer{"GET": func() answer {
			if !slices.Contains(s.tenantsLocked(), seg[3]) {
				return fail(http.StatusNotFound, "Tenant not found")
			}
			return okJSON(nonNil(s.namespacesLocked(seg[3])))
		}})
	}
	if len(seg) < 5 {
		return nil
	}
	ns := seg[3] + "/" + seg[4]
	switch len(seg) {
	case 5:
		return method(q, map[string]func() answer{
			"GET": func() answer {
				if !s.namespaceExistsLocked(ns) {
					return fail(http.StatusNotFound, "Namespace does not exist")
				}
				return okJSON(map[string]any{
					"replication_clusters": []string{ClusterName},
					"bundles":              defaultBundles(),
				})
			},
			"PUT": func() answer {
				if !slices.Contains(s.tenantsLocked(), seg[3]) {
					return fail(http.StatusNotFound, "Tenant does not exist")
				}
				if s.namespaceExistsLocked(ns) {
					return fail(http.StatusConflict, "Namespace already exists")
				}
				m.namespaces[ns] = true
				return noContent()
			},
			"DELETE": func() answer {
				if !s.namespaceExistsLocked(ns) {
					return fail(http.StatusNotFound, "Namespace "+ns+" does not exist.")
				}
				if len(s.namespaceTopicsLocked(ns, "")) > 0 || s.hasPartitionedLocked(ns) {
					return fail(http.StatusConflict, "Cannot delete non empty namespace")
				}
				delete(m.namespaces, ns)
				return noContent()
			},
		})
	case 6:
		switch seg[5] {
		case "topics":
			return method(q, map[string]func() answer{"GET": func() answer {
				if !s.namespaceExistsLocked(ns) {
					return fail(http.StatusNotFound, "Namespace does not exist")
				}
				domain := "persistent"
				switch q.query("mode") {
				case "NON_PERSISTENT":
					domain = "non-persistent"
				case "ALL":
					domain = ""
				}
				return okJSON(nonNil(s.namespaceTopicsLocked(ns, domain)))
			}})
		case "bundles":
			return method(q, map[string]func() answer{"GET": func() answer {
				if !s.namespaceExistsLocked(ns) {
					return fail(http.StatusNotFound, "Namespace does not exist")
				}
				return okJSON(defaultBundles())
			}})
		case "unload":
			return method(q, map[string]func() answer{"PUT": func() answer {
				if !s.namespaceExistsLocked(ns) {
					return fail(http.StatusNotFound, "Namespace not found")
				}
				h.unloadNamespaceLocked(ns, 0, 1<<32)
				return noContent()
			}})
		case "backlogQuota", "backlogQuotaMap":
			return h.backlogQuotaRoute(q, ns)
		}
	case 7:
		if seg[6] != "unload" {
			return nil
		}
		return method(q, map[string]func() answer{"PUT": func() answer {
			if !s.namespaceExistsLocked(ns) {
				return fail(http.StatusNotFound, "Namespace not found")
			}
			lo, hi, reason := parseBundle(ns, seg[5])
			if reason != "" {
				return fail(http.StatusPreconditionFailed, reason)
			}
			h.unloadNamespaceLocked(ns, lo, hi)
			return noContent()
		}})
	}
	return nil
}

func nonNil(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

// hasPartitionedLocked reports whether a namespace holds a partitioned
// topic (whose partitions may not exist, as on non-persistent topics).
func (s *Server) hasPartitionedLocked(ns string) bool {
	for name := range s.partitions {
		if n, _ := namespaceOf(name); n == ns {
			return true
		}
	}
	return false
}

// namespaceTopicsLocked lists the topics of a namespace, of one domain
// ("persistent", "non-persistent") or of both (""): the non-partitioned
// topics and the partitions, as a broker lists them, sorted.
func (s *Server) namespaceTopicsLocked(ns, domain string) []string {
	var out []string
	add := func(full string) {
		d, rest, _ := strings.Cut(full, "://")
		if domain != "" && d != domain {
			return
		}
		if strings.HasPrefix(rest, ns+"/") && !slices.Contains(out, full) {
			out = append(out, full)
		}
	}
	for name := range s.topics {
		add(name)
	}
	slices.Sort(out)
	return out
}

// The bundles of a namespace: a standalone broker splits the hash range
// in four (defaultNumberOfNamespaceBundles). A topic belongs to the
// bundle its name's hash falls in.
var bundleBoundaries = []uint64{0, 0x40000000, 0x80000000, 0xc0000000, 0xffffffff}

func defaultBundles() map[string]any {
	var b []string
	for _, x := range bundleBoundaries {
		b = append(b, fmt.Sprintf("0x%08x", x))
	}
	return map[string]any{"boundaries": b, "numBundles": len(b) - 1}
}

// parseBundle reads a bundle range of namespace ns,
// "0x00000000_0x40000000", and checks it is one of the namespace's
// bundles, with the broker's reason when not; hi is exclusive (1<<32 for
// the last).
func parseBundle(ns, s string) (lo, hi uint64, reason string) {
	a, b, found := strings.Cut(s, "_")
	lo, err1 := strconv.ParseUint(strings.TrimPrefix(a, "0x"), 16, 32)
	hi, err2 := strconv.ParseUint(strings.TrimPrefix(b, "0x"), 16, 32)
	if !found || err1 != nil || err2 != nil {
		return 0, 0, "Invalid bundle range"
	}
	i := slices.Index(bundleBoundaries, lo)
	if i < 0 || i == len(bundleBoundaries)-1 {
		return 0, 0, fmt.Sprintf("Invalid lower boundary for bundle %s/%s", ns, s)
	}
	if want := bundleBoundaries[i+1]; want != hi {
		return 0, 0, fmt.Sprintf("Invalid upper boundary for bundle %s/%s. Expected upper boundary of %s/0x%08x_0x%08x", ns, s, ns, lo, want)
	}
	if hi == 0xffffffff {
		hi = 1 << 32
	}
	return lo, hi, ""
}

// bundleHash is the hash that places a topic in a bundle: the CRC-32
// (IEEE) of its full name, the hash function a broker gives its bundle
// factory.
func bundleHash(name string) uint32 { return crc32.ChecksumIEEE([]byte(name)) }

// unloadNamespaceLocked unloads the topics of a namespace whose bundle
// hash is in [lo, hi).
func (h *adminHandler) unloadNamespaceLocked(ns string, lo, hi uint64) {
	s := h.store()
	for _, name := range s.namespaceTopicsLocked(ns, "") {
		if x := uint64(bundleHash(name)); x >= lo && x < hi {
			h.unloadLocked(name)
		}
	}
}

// unloadLocked unloads one topic (a full name, not partitioned): its
// producers and consumers get CLOSE_PRODUCER and CLOSE_CONSUMER without
// an assigned broker, as from a standalone broker; on a cluster its
// ownership is decided again at the next lookup.
func (h *adminHandler) unloadLocked(name string) {
	if c := h.cluster; c != nil {
		c.closeClientsLocked(name, "", "")
		delete(c.owners, name)
		return
	}
	h.srv.closeTopicClientsLocked(name, "", "", nil)
}

// backlogQuotaRoute keeps a namespace's backlog quotas for
// backlogQuotaMap to report; the fake does not enforce them.
func (h *adminHandler) backlogQuotaRoute(q *adminRequest, ns string) *answer {
	s := h.store()
	m := s.adminMetaLocked()
	exists := func() *answer {
		if !s.namespaceExistsLocked(ns) {
			a := fail(http.StatusNotFound, "Namespace does not exist")
			return &a
		}
		return nil
	}
	typ := q.query("backlogQuotaType")
	if typ == "" {
		typ = "destination_storage"
	}
	if q.seg[5] == "backlogQuotaMap" {
		return method(q, map[string]func() answer{"GET": func() answer {
			if a := exists(); a != nil {
				return *a
			}
			out := map[string]json.RawMessage{}
			for k, v := range m.quotas[ns] {
				out[k] = v
			}
			return okJSON(out)
		}})
	}
	return method(q, map[string]func() answer{
		"POST": func() answer {
			if a := exists(); a != nil {
				return *a
			}
			if !json.Valid(q.body) {
				return badJSON(errors.New("invalid backlog quota"))
			}
			if m.quotas == nil {
				m.quotas = map[string]map[string]json.RawMessage{}
			}
			if m.quotas[ns] == nil {
				m.quotas[ns] = map[string]json.RawMessage{}
			}
			m.quotas[ns][typ] = append(json.RawMessage(nil), q.body...)
			return noContent()
		},
		"DELETE": func() answer {
			if a := exists(); a != nil {
				return *a
			}
			delete(m.quotas[ns], typ)
			return noContent()
		},
	})
}
