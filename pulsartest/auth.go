package pulsartest

import (
	"bytes"
	"cmp"
	"crypto"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"unicode"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Authentication and authorization as a broker with authenticationEnabled
// and authorizationEnabled does them.
//
// Authentication is on as soon as one provider is configured: WithToken,
// WithTokenSecretKey or WithTokenPublicKey (auth method "token"),
// WithBasicAuth or WithBasicAuthHtpasswd ("basic"), WithTLSAuthentication
// ("tls"). A client presenting a method a provider handles must pass that
// provider or is refused; a client presenting no credentials, or a method
// no provider handles, connects as the anonymous role if WithAnonymousRole
// set one, and is refused otherwise — the broker's rule.
//
// Authorization (WithAuthorization) then decides, by role, which topics a
// connection may look up, produce to and consume from: superusers every
// topic, a tenant's admins (WithTenantAdmins) every topic of the tenant,
// other roles the namespaces granted to them (WithNamespacePermission,
// GrantPermission).

// errNoProvider is the broker's refusal of a client without credentials
// when there is no anonymous role.
var errNoProvider = errors.New("no anonymous role, and no authentication provider configured")

// Errors of the individual providers.
var (
	errBadToken = errors.New("token does not match")
	errBadBasic = errors.New("unknown user or wrong password")
	errNoCert   = errors.New("no verified client certificate")
)

// WithTokenSecretKey makes the server verify tokens (auth method "token")
// as JSON Web Tokens signed with HMAC (HS256, HS384, HS512) under key, as a
// broker with tokenSecretKey does: the signature must match, the token must
// not have expired ("exp") nor be premature ("nbf") by the server's clock,
// and its "sub" claim is the connection's role. key is the secret's raw
// bytes (a broker's tokenSecretKey=file:// reads the file's bytes as they
// are). May be given more than once, and with WithTokenPublicKey: a token
// any key verifies is accepted.
func WithTokenSecretKey(key []byte) Option {
	k := jwtKey{secret: slices.Clone(key)}
	return func(c *config) { c.jwtKeys = append(c.jwtKeys, k) }
}

// WithTokenPublicKey makes the server verify tokens (auth method "token")
// as JSON Web Tokens signed with the private key of key, as a broker with
// tokenPublicKey does: an *rsa.PublicKey verifies RS256/384/512 and
// PS256/384/512, an *ecdsa.PublicKey ES256/384/512. Otherwise as
// WithTokenSecretKey.
func WithTokenPublicKey(key crypto.PublicKey) Option {
	k := jwtKey{public: key}
	return func(c *config) { c.jwtKeys = append(c.jwtKeys, k) }
}

// WithTLSAuthentication accepts auth method "tls", as a broker with the TLS
// authentication provider does: the connection must have come through a
// TLS listener that verified a client certificate (tls.Config ClientCAs
// with ClientAuth VerifyClientCertIfGiven or stricter), and the role is the
// certificate's subject common name. Without a verified certificate the
// client is refused.
func WithTLSAuthentication() Option {
	return func(c *config) { c.tlsAuth = true }
}

// WithAnonymousRole gives clients that present no credentials — or a method
// no configured provider handles — the role role instead of refusing them,
// as a broker with anonymousUserRole does. Wrong credentials for a method a
// provider handles are still refused. Without authentication it is the
// role of every connection (for WithAuthorization).
func WithAnonymousRole(role string) Option {
	return func(c *config) { c.anonymousRole, c.hasAnonymous = role, true }
}

// WithAuthorization turns authorization on: LOOKUP, PARTITIONED_METADATA,
// PRODUCER and SUBSCRIBE are allowed only for roles that may use the topic
// — superUsers everywhere, tenant admins in their tenant, other roles in
// the namespaces granted to them — and otherwise answered with an
// AuthorizationError, as a broker with authorizationEnabled answers them.
// A connection without a role (authentication off, no anonymous role) may
// use nothing.
func WithAuthorization(superUsers ...string) Option {
	return func(c *config) {
		a := c.authzConfig()
		a.enabled = true
		for _, r := range superUsers {
			a.superUsers[r] = true
		}
	}
}

// WithTenantAdmins makes roles admins of tenant: with WithAuthorization
// they may use every topic of the tenant, as a tenant's admin roles may on
// a broker.
func WithTenantAdmins(tenant string, roles ...string) Option {
	return func(c *config) { c.authzConfig().setTenantAdmins(tenant, roles) }
}

// WithNamespacePermission grants role the right to produce to and consume
// from the topics of namespace ("tenant/namespace"), as `pulsar-admin
// namespaces grant-permission --actions produce,consume` does.
func WithNamespacePermission(namespace, role string) Option {
	return func(c *config) { c.authzConfig().grant(namespace, role) }
}

// authzConfig is the authorization state; guarded by Server.mu once the
// server runs.
type authzConfig struct {
	enabled      bool
	superUsers   map[string]bool
	tenantAdmins map[string]map[string]bool // tenant → roles
	grants       map[string]map[string]bool // namespace → roles
}

func (c *config) authzConfig() *authzConfig {
	if c.authz == nil {
		c.authz = &authzConfig{
			superUsers:   map[string]bool{},
			tenantAdmins: map[string]map[string]bool{},
			grants:       map[string]map[string]bool{},
		}
	}
	return c.authz
}

func (a *authzConfig) setTenantAdmins(tenant string, roles []string) {
	set := map[string]bool{}
	for _, r := range roles {
		set[r] = true
	}
	a.tenantAdmins[tenant] = set
}

func (a *authzConfig) grant(namespace, role string) {
	if a.grants[namespace] == nil {
		a.grants[namespace] = map[string]bool{}
	}
	a.grants[namespace][role] = true
}

// allowed reports whether role may use topic (a full or short name).
func (a *authzConfig) allowed(role, topic string) bool {
	if a == nil || !a.enabled {
		return true
	}
	if role == "" {
		return false
	}
	if a.superUsers[role] {
		return true
	}
	tenant, namespace := topicNamespace(topic)
	return a.tenantAdmins[tenant][role] || a.grants[namespace][role]
}

// topicNamespace is the tenant and "tenant/namespace" of a topic name:
// "persistent://t/ns/x", "t/ns/x" or a short name (public/default).
func topicNamespace(topic string) (tenant, namespace string) {
	if _, rest, ok := strings.Cut(topic, "://"); ok {
		topic = rest
	}
	parts := strings.Split(topic, "/")
	if len(parts) < 3 {
		return "public", "public/default"
	}
	return parts[0], parts[0] + "/" + parts[1]
}

// GrantPermission grants role the right to produce to and consume from the
// topics of namespace ("tenant/namespace"), as WithNamespacePermission
// does, on a running server; an admin API creating a namespace with
// auth_policies calls it.
func (s *Server) GrantPermission(namespace, role string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.authzConfig().grant(namespace, role)
}

// RevokePermission takes back what GrantPermission gave.
func (s *Server) RevokePermission(namespace, role string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cfg.authzConfig().grants[namespace], role)
}

// SetTenantAdmins replaces the admin roles of tenant, as WithTenantAdmins
// sets them, on a running server.
func (s *Server) SetTenantAdmins(tenant string, roles ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.authzConfig().setTenantAdmins(tenant, roles)
}

// Authorized reports whether role may look up, produce to and consume from
// topic; always true without WithAuthorization.
func (s *Server) Authorized(role, topic string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.authz.allowed(role, topic)
}

// Authenticate checks credentials as the server checks a CONNECT's: the
// auth method, its data and the TLS state of the connection (nil if not
// TLS). It returns the role, or the reason for refusing.
func (s *Server) Authenticate(method string, data []byte, state *tls.ConnectionState) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authenticateLocked(method, data, state)
}

// AuthenticateHTTP checks the credentials of an HTTP request as a broker's
// web service does: "Authorization: Bearer TOKEN" for the token provider,
// "Authorization: Basic ..." for the basic one, otherwise the verified
// client certificate of an HTTPS request for the TLS one, otherwise the
// anonymous role. It returns the role, or the reason for refusing.
func (s *Server) AuthenticateHTTP(r *http.Request) (string, error) {
	method, data := "none", []byte(nil)
	h := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(h, "Bearer "):
		method, data = "token", []byte(strings.TrimPrefix(h, "Bearer "))
	case strings.HasPrefix(h, "Basic "):
		dec, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic "))
		if err != nil {
			return "", errBadBasic
		}
		method, data = "basic", dec
	case r.TLS != nil && len(r.TLS.VerifiedChains) > 0:
		method = "tls"
	}
	return s.Authenticate(method, data, r.TLS)
}

// Role is the role the connection authenticated as: the token's subject,
// the basic user, the client certificate's common name, or the anonymous
// role; empty before the handshake and when authentication is off without
// an anonymous role.
func (c *Conn) Role() string {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	return c.role
}

// Roles lists the roles of the live connections that completed the
// handshake, in the order the server accepted them.
func (s *Server) Roles() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		if c.state == stateConnected {
			cs = append(cs, c)
		}
	}
	slices.SortFunc(cs, func(a, b *Conn) int { return cmp.Compare(a.id, b.id) })
	roles := make([]string, len(cs))
	for i, c := range cs {
		roles[i] = c.role
	}
	return roles
}

// authEnabled reports whether any authentication provider is configured.
func (c *config) authEnabled() bool {
	return c.hasToken || len(c.jwtKeys) > 0 || c.basic != nil || c.basicUsers != nil || c.tlsAuth
}

// authenticateLocked is Authenticate with mu held.
func (s *Server) authenticateLocked(method string, data []byte, state *tls.ConnectionState) (string, error) {
	cfg := &s.cfg
	if !cfg.authEnabled() {
		return cfg.anonymousRole, nil
	}
	switch method {
	case "token":
		if cfg.hasToken || len(cfg.jwtKeys) > 0 {
			return s.tokenRoleLocked(data)
		}
	case "basic":
		if cfg.basic != nil || cfg.basicUsers != nil {
			return basicRole(cfg, data)
		}
	case "tls":
		if cfg.tlsAuth {
			if state == nil || len(state.VerifiedChains) == 0 || len(state.PeerCertificates) == 0 {
				return "", errNoCert
			}
			return state.PeerCertificates[0].Subject.CommonName, nil
		}
	}
	// No provider for the method: the broker's anonymous role, if any.
	if cfg.hasAnonymous {
		return cfg.anonymousRole, nil
	}
	return "", errNoProvider
}

// WithLenientTokens accepts tokens (auth method "token") followed by white
// space — typically the newline that ends the file a client read its token
// from without trimming — as Pulsar 4.0 brokers do (the Go client's own
// tests present such a token, and pass in its CI on Pulsar 4.0.3). Without
// it a token containing white space anywhere is refused, as Pulsar 4.2.4
// refuses it ("Compact JWT strings may not contain whitespace", measured
// by interop/realpulsar).
func WithLenientTokens() Option {
	return func(c *config) { c.lenientTokens = true }
}

// errTokenWhitespace is the refusal of a token with white space in it.
var errTokenWhitespace = errors.New("compact JWT strings may not contain whitespace")

// tokenRoleLocked checks a token against WithToken's and the JWT keys.
func (s *Server) tokenRoleLocked(data []byte) (string, error) {
	cfg := &s.cfg
	if cfg.lenientTokens {
		data = bytes.TrimRight(data, " \t\r\n")
	}
	if bytes.ContainsFunc(data, unicode.IsSpace) {
		return "", errTokenWhitespace
	}
	if cfg.hasToken && subtle.ConstantTimeCompare(data, cfg.token) == 1 {
		return staticTokenRole(cfg.token), nil
	}
	if len(cfg.jwtKeys) == 0 {
		return "", errBadToken
	}
	return jwtVerify(string(data), cfg.jwtKeys, s.x.now())
}

// staticTokenRole is the role of WithToken's token: its "sub" claim if it
// is a JSON Web Token (not verified: WithToken compares bytes), otherwise
// "token".
func staticTokenRole(tok []byte) string {
	parts := strings.Split(string(tok), ".")
	if len(parts) == 3 {
		if body, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			var claims struct {
				Sub string `json:"sub"`
			}
			if json.Unmarshal(body, &claims) == nil && claims.Sub != "" {
				return claims.Sub
			}
		}
	}
	return "token"
}

// basicRole checks "user:password" against WithBasicAuth's and the
// htpasswd users.
func basicRole(cfg *config, data []byte) (string, error) {
	if cfg.basic != nil && subtle.ConstantTimeCompare(data, cfg.basic) == 1 {
		user, _, _ := strings.Cut(string(cfg.basic), ":")
		return user, nil
	}
	if user, ok := htpasswdOK(cfg.basicUsers, data); ok {
		return user, nil
	}
	return "", errBadBasic
}

// tlsState is the TLS state of c's connection, nil if it is not TLS.
func (c *Conn) tlsState() *tls.ConnectionState {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return nil
	}
	st := tc.ConnectionState()
	return &st
}

// deniedLocked answers a LOOKUP, PARTITIONED_METADATA, PRODUCER or
// SUBSCRIBE the connection's role may not make with the broker's
// AuthorizationError, and reports whether it did.
func (s *Server) deniedLocked(c *Conn, cmd *pulsarpb.BaseCommand) bool {
	a := s.cfg.authz
	if a == nil || !a.enabled {
		return false
	}
	var topic, msg string
	switch cmd.GetType() {
	case pulsarpb.BaseCommand_LOOKUP:
		topic, msg = cmd.GetLookupTopic().GetTopic(), "Client is not authorized to Lookup"
	case pulsarpb.BaseCommand_PARTITIONED_METADATA:
		topic, msg = cmd.GetPartitionMetadata().GetTopic(), "Client is not authorized to Get Partition Metadata"
	case pulsarpb.BaseCommand_PRODUCER:
		topic, msg = cmd.GetProducer().GetTopic(), "Client is not authorized to Produce"
	case pulsarpb.BaseCommand_SUBSCRIBE:
		topic, msg = cmd.GetSubscribe().GetTopic(), "Client is not authorized to subscribe"
	default:
		return false
	}
	if a.allowed(c.role, topic) {
		return false
	}
	_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_AuthorizationError, msg))
	return true
}
