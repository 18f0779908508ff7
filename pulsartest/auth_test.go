package pulsartest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

var b64 = base64.RawURLEncoding

// jwtUnsigned is the header and claims of a JSON Web Token, ready to sign.
func jwtUnsigned(alg string, claims map[string]any) string {
	head, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	body, _ := json.Marshal(claims)
	return b64.EncodeToString(head) + "." + b64.EncodeToString(body)
}

func hs256(key []byte, claims map[string]any) string {
	u := jwtUnsigned("HS256", claims)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(u))
	return u + "." + b64.EncodeToString(m.Sum(nil))
}

func rs256(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	u := jwtUnsigned("RS256", claims)
	d := sha256.Sum256([]byte(u))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:])
	require.NoError(t, err)
	return u + "." + b64.EncodeToString(sig)
}

func es256(t *testing.T, key *ecdsa.PrivateKey, claims map[string]any) string {
	u := jwtUnsigned("ES256", claims)
	d := sha256.Sum256([]byte(u))
	r, s, err := ecdsa.Sign(rand.Reader, key, d[:])
	require.NoError(t, err)
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return u + "." + b64.EncodeToString(sig)
}

func withAuth(method, data string) func(*pulsarpb.CommandConnect) {
	return func(cc *pulsarpb.CommandConnect) {
		cc.AuthMethodName = proto.String(method)
		cc.AuthData = []byte(data)
	}
}

// refused expects the broker's refusal of a CONNECT: ERROR
// AuthenticationError with request id -1, then the connection closed.
func (c *client) refused() {
	c.t.Helper()
	e := c.expect(pulsarpb.BaseCommand_ERROR).GetError()
	assert.Equal(c.t, pulsarpb.ServerError_AuthenticationError, e.GetError())
	assert.Equal(c.t, uint64(math.MaxUint64), e.GetRequestId())
	c.expectClosed()
}

func TestJWTSecretKey(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	other := []byte("fedcba9876543210fedcba9876543210")
	now := time.Now()
	tests := []struct {
		name string
		tok  string
		ok   bool
	}{
		{"valid", hs256(key, map[string]any{"sub": "alice"}), true},
		{"valid until later", hs256(key, map[string]any{"sub": "alice", "exp": now.Add(time.Hour).Unix()}), true},
		{"expired", hs256(key, map[string]any{"sub": "alice", "exp": now.Add(-time.Minute).Unix()}), false},
		{"not yet valid", hs256(key, map[string]any{"sub": "alice", "nbf": now.Add(time.Hour).Unix()}), false},
		{"other key", hs256(other, map[string]any{"sub": "alice"}), false},
		{"no subject", hs256(key, map[string]any{"exp": now.Add(time.Hour).Unix()}), false},
		{"alg none", jwtUnsigned("none", map[string]any{"sub": "alice"}) + ".", false},
		{"not a JWT", "s3cret", false},
		{"signature cut", hs256(key, map[string]any{"sub": "alice"})[:60], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := pulsartest.NewTCP(t, pulsartest.WithTokenSecretKey(key), pulsartest.WithAnonymousRole("anonymous"))
			c := dial(t, s)
			c.send(connectCmd(withToken(tt.tok)))
			if !tt.ok {
				// Wrong credentials are refused even with an anonymous role.
				c.refused()
				return
			}
			c.expect(pulsarpb.BaseCommand_CONNECTED)
			role, err := s.Authenticate("token", []byte(tt.tok), nil)
			require.NoError(t, err)
			assert.Equal(t, "alice", role)
		})
	}
}

func TestJWTPublicKey(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ek2, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	claims := map[string]any{"sub": "bob"}
	s := pulsartest.NewServer(pulsartest.WithTokenPublicKey(&rk.PublicKey), pulsartest.WithTokenPublicKey(&ek.PublicKey))
	for name, tok := range map[string]string{"RS256": rs256(t, rk, claims), "ES256": es256(t, ek, claims)} {
		role, err := s.Authenticate("token", []byte(tok), nil)
		assert.NoError(t, err, name)
		assert.Equal(t, "bob", role, name)
	}
	// Another key's signature, and an HMAC token signed with the public
	// key's bytes (the algorithm must suit the key), are refused.
	_, err = s.Authenticate("token", []byte(es256(t, ek2, claims)), nil)
	assert.Error(t, err)
	der, err := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	require.NoError(t, err)
	_, err = s.Authenticate("token", []byte(hs256(der, claims)), nil)
	assert.Error(t, err)
}

func TestJWTExpiryFollowsTheServerClock(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	clk := &fixedClock{t: time.Unix(1_000_000, 0)}
	s := pulsartest.NewServer(pulsartest.WithTokenSecretKey(key), pulsartest.WithClock(clk))
	tok := hs256(key, map[string]any{"sub": "carol", "exp": 1_000_060})
	_, err := s.Authenticate("token", []byte(tok), nil)
	assert.NoError(t, err)
	clk.t = time.Unix(1_000_060, 0)
	_, err = s.Authenticate("token", []byte(tok), nil)
	assert.Error(t, err, "a token is expired at its exp")
}

type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time { return c.t }

func (c *fixedClock) AfterFunc(time.Duration, func()) pulsartest.Timer { return stopped{} }

type stopped struct{}

func (stopped) Stop() bool { return false }

func TestAnonymousRole(t *testing.T) {
	tests := []struct {
		name    string
		opts    []pulsartest.Option
		connect func(*pulsarpb.CommandConnect)
		role    string // "" : refused
	}{
		{"no credentials", []pulsartest.Option{pulsartest.WithToken("s3cret"), pulsartest.WithAnonymousRole("anon")},
			func(*pulsarpb.CommandConnect) {}, "anon"},
		{"a method no provider handles", []pulsartest.Option{pulsartest.WithToken("s3cret"), pulsartest.WithAnonymousRole("anon")},
			withAuth("basic", "u:p"), "anon"},
		{"the right token", []pulsartest.Option{pulsartest.WithToken("s3cret"), pulsartest.WithAnonymousRole("anon")},
			withToken("s3cret"), "token"},
		{"a wrong token", []pulsartest.Option{pulsartest.WithToken("s3cret"), pulsartest.WithAnonymousRole("anon")},
			withToken("guess"), ""},
		{"no credentials, no anonymous role", []pulsartest.Option{pulsartest.WithToken("s3cret")},
			func(*pulsarpb.CommandConnect) {}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := pulsartest.NewTCP(t, tt.opts...)
			c := dial(t, s)
			c.send(connectCmd(tt.connect))
			if tt.role == "" {
				c.refused()
				return
			}
			c.expect(pulsarpb.BaseCommand_CONNECTED)
			assert.Equal(t, []string{tt.role}, s.Roles())
		})
	}
}

func TestBasicAuthHtpasswd(t *testing.T) {
	// openssl passwd -apr1 -salt pulsarte s3cret
	file := []byte("# users\n\nalice:$apr1$pulsarte$RuFT7woq5KOlbOf4lQu2I/\n")
	opt, err := pulsartest.WithBasicAuthHtpasswd(file)
	require.NoError(t, err)
	s := pulsartest.NewServer(opt)
	role, err := s.Authenticate("basic", []byte("alice:s3cret"), nil)
	assert.NoError(t, err)
	assert.Equal(t, "alice", role)
	for _, bad := range []string{"alice:guess", "bob:s3cret", "alice", ""} {
		_, err := s.Authenticate("basic", []byte(bad), nil)
		assert.Error(t, err, bad)
	}
	_, err = pulsartest.WithBasicAuthHtpasswd([]byte("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"))
	assert.Error(t, err, "only MD5-crypt hashes are supported")
	_, err = pulsartest.WithBasicAuthHtpasswd([]byte("no-colon\n"))
	assert.Error(t, err)
}

func TestAuthenticateHTTP(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	s := pulsartest.NewServer(pulsartest.WithTokenSecretKey(key), pulsartest.WithBasicAuth("admin", "pw"),
		pulsartest.WithAnonymousRole("anonymous"))
	req := func(h string) (string, error) {
		r := httptest.NewRequest("GET", "/admin/v2/tenants", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		return s.AuthenticateHTTP(r)
	}
	role, err := req("Bearer " + hs256(key, map[string]any{"sub": "dave"}))
	assert.NoError(t, err)
	assert.Equal(t, "dave", role)
	role, err = req("Basic " + base64.StdEncoding.EncodeToString([]byte("admin:pw")))
	assert.NoError(t, err)
	assert.Equal(t, "admin", role)
	role, err = req("")
	assert.NoError(t, err)
	assert.Equal(t, "anonymous", role)
	_, err = req("Bearer " + hs256([]byte("other"), map[string]any{"sub": "dave"}))
	assert.Error(t, err)
}

func TestAuthorization(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	s := pulsartest.NewTCP(t,
		pulsartest.WithTokenSecretKey(key),
		pulsartest.WithAnonymousRole("anonymous"),
		pulsartest.WithAuthorization("admin"),
		pulsartest.WithTenantAdmins("public", "anonymous"),
		pulsartest.WithNamespacePermission("private/auth", "token-principal"),
	)
	const private = "persistent://private/auth/t1"
	tests := []struct {
		name    string
		connect func(*pulsarpb.CommandConnect)
		topic   string
		ok      bool
	}{
		{"anonymous in its tenant", func(*pulsarpb.CommandConnect) {}, "persistent://public/default/t1", true},
		{"anonymous, short name", func(*pulsarpb.CommandConnect) {}, "t1", true},
		{"anonymous elsewhere", func(*pulsarpb.CommandConnect) {}, private, false},
		{"granted role", withToken(hs256(key, map[string]any{"sub": "token-principal"})), private, true},
		{"other role", withToken(hs256(key, map[string]any{"sub": "mallory"})), private, false},
		{"superuser", withToken(hs256(key, map[string]any{"sub": "admin"})), private, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, s)
			c.handshake(tt.connect)
			c.send(lookup(1, tt.topic))
			lr := c.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse()
			c.send(producerCmd(2, 1, tt.topic, "", pulsarpb.ProducerAccessMode_Shared))
			c.send(subscribeCmd(3, 1, tt.topic, "sub", pulsarpb.CommandSubscribe_Shared, pulsarpb.CommandSubscribe_Earliest))
			if tt.ok {
				assert.Equal(t, pulsarpb.CommandLookupTopicResponse_Connect, lr.GetResponse())
				c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
				c.expect(pulsarpb.BaseCommand_SUCCESS)
				return
			}
			assert.Equal(t, pulsarpb.CommandLookupTopicResponse_Failed, lr.GetResponse())
			assert.Equal(t, pulsarpb.ServerError_AuthorizationError, lr.GetError())
			for range 2 {
				e := c.expect(pulsarpb.BaseCommand_ERROR).GetError()
				assert.Equal(t, pulsarpb.ServerError_AuthorizationError, e.GetError())
			}
		})
	}

	// Granted and revoked while the server runs.
	assert.False(t, s.Authorized("mallory", private))
	s.GrantPermission("private/auth", "mallory")
	assert.True(t, s.Authorized("mallory", private))
	s.RevokePermission("private/auth", "mallory")
	assert.False(t, s.Authorized("mallory", private))
	s.SetTenantAdmins("private", "mallory")
	assert.True(t, s.Authorized("mallory", private))
}

func TestAuthorizationOffAllowsAll(t *testing.T) {
	s := pulsartest.NewServer(pulsartest.WithNamespacePermission("private/auth", "x"))
	assert.True(t, s.Authorized("", "persistent://private/auth/t"))
}

func TestTLSAuthentication(t *testing.T) {
	ca := testenv.NewAuthority(t, "test CA")
	server := ca.Issue(t, testenv.Leaf{CommonName: "server", Names: []string{"127.0.0.1"}})
	admin := ca.Issue(t, testenv.Leaf{CommonName: "admin", Client: true})
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{server},
		ClientCAs:    ca.Pool(),
		ClientAuth:   tls.VerifyClientCertIfGiven,
	})
	require.NoError(t, err)
	s := pulsartest.NewServer(pulsartest.WithTLSAuthentication(), pulsartest.WithAnonymousRole("anonymous"))
	require.NoError(t, s.Start(l))
	t.Cleanup(func() { _ = s.Close() })

	dialTLS := func(certs []tls.Certificate) *client {
		nc, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: ca.Pool(), Certificates: certs})
		require.NoError(t, err)
		t.Cleanup(func() { _ = nc.Close() })
		return &client{t: t, nc: nc, r: frame.NewReader(nc, 0)}
	}

	// With a certificate: the role is its common name.
	c := dialTLS([]tls.Certificate{admin})
	c.handshake(withAuth("tls", ""))
	assert.Equal(t, []string{"admin"}, s.Roles())

	// Method tls without a certificate is refused.
	c2 := dialTLS(nil)
	c2.send(connectCmd(withAuth("tls", "")))
	c2.refused()

	// No credentials: the anonymous role, certificate or not.
	c3 := dialTLS(nil)
	c3.handshake()
	assert.ElementsMatch(t, []string{"admin", "anonymous"}, s.Roles())
}

// A token with white space in it is refused, as Pulsar 4.2 refuses it
// (interop/realpulsar TestTokenWithWhitespaceRefused); WithLenientTokens
// accepts trailing white space, as Pulsar 4.0 did.
func TestTokenWhitespace(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	jwt := hs256(key, map[string]any{"sub": "alice"})
	for _, tc := range []struct {
		name, tok       string
		strict, lenient bool
	}{
		{"plain", jwt, true, true},
		{"trailing newline", jwt + "\n", false, true},
		{"trailing CRLF", jwt + "\r\n", false, true},
		{"trailing space", jwt + " ", false, true},
		{"leading newline", "\n" + jwt, false, false},
		{"newline inside", jwt[:20] + "\n" + jwt[20:], false, false},
		{"static, trailing newline", "s3cret\n", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, lenient := range []bool{false, true} {
				opts := []pulsartest.Option{pulsartest.WithTokenSecretKey(key), pulsartest.WithToken("s3cret")}
				want := tc.strict
				if lenient {
					opts = append(opts, pulsartest.WithLenientTokens())
					want = tc.lenient
				}
				s := pulsartest.NewTCP(t, opts...)
				c := dial(t, s)
				c.send(connectCmd(withToken(tc.tok)))
				if want {
					c.expect(pulsarpb.BaseCommand_CONNECTED)
				} else {
					c.refused()
				}
			}
		})
	}
}

// In a cluster the authorization check comes before the cluster's own
// answer to LOOKUP (owner or redirect).
func TestAuthorizationInACluster(t *testing.T) {
	cl := pulsartest.StartCluster(t, 2, pulsartest.WithAnonymousRole("anonymous"),
		pulsartest.WithAuthorization(), pulsartest.WithTenantAdmins("public", "anonymous"))
	c := dialAddr(t, strings.TrimPrefix(cl.URL(), "pulsar://"))
	c.handshake()
	c.send(lookup(1, "persistent://private/auth/t"))
	lr := c.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse()
	assert.Equal(t, pulsarpb.ServerError_AuthorizationError, lr.GetError())
	c.send(lookup(2, "persistent://public/default/t"))
	lr = c.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse()
	assert.NotEqual(t, pulsarpb.CommandLookupTopicResponse_Failed, lr.GetResponse())
}

// An expiry far in the future is in the future (no overflow).
func TestJWTFarExpiry(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	s := pulsartest.NewServer(pulsartest.WithTokenSecretKey(key))
	for _, exp := range []any{int64(32503680000), 1e12, 4e9 + 0.5} {
		tok := hs256(key, map[string]any{"sub": "alice", "exp": exp})
		_, err := s.Authenticate("token", []byte(tok), nil)
		assert.NoError(t, err, "exp %v", exp)
	}
}
