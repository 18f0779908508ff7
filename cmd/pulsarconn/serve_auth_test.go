package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/auth/tlsauth"
	tlstransport "github.com/pulsarconn/pulsarconn/adapters/tls"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
)

// tempFile writes data to a file of the test's temporary directory.
func tempFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

// refused waits until b's handshake has been refused.
func refused(t *testing.T, b *pulsarconn.Broker) {
	t.Helper()
	for {
		st, changed := b.WatchState()
		if st == pulsarconn.StateClosed { // a refusal of the credentials is final
			break
		}
		<-changed
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, b.WaitConnected(cancelled), pulsarconn.ErrAuthenticationError)
}

func connects(t *testing.T, url string, opts ...pulsarconn.BrokerOption) *pulsarconn.Broker {
	t.Helper()
	b, err := pulsarconn.Start(url, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { b.Stop(context.Background()) })
	require.NoError(t, b.WaitConnected(testenv.Context(t)))
	return b
}

func startRefusedServe(t *testing.T, url string, opts ...pulsarconn.BrokerOption) {
	t.Helper()
	b, err := pulsarconn.Start(url, opts...)
	require.NoError(t, err)
	defer b.Stop(context.Background())
	refused(t, b)
}

// The token may come from a file (without its final newline) or from the
// environment, so that it need not be on the command line.
func TestServeTokenFromFileOrEnvironment(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		path := tempFile(t, "token", []byte("letmein\n"))
		out := startServe(t, "--listen", "pulsar://127.0.0.1:0", "--token-file", path)
		service := out.field(t, "serving ")[0]
		connects(t, service, pulsarconn.WithAuthenticator(token("letmein")))
		startRefusedServe(t, service, pulsarconn.WithAuthenticator(token("letmein\n")))
		startRefusedServe(t, service)
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv(tokenEnv, "from-env")
		out := startServe(t, "--listen", "pulsar://127.0.0.1:0")
		service := out.field(t, "serving ")[0]
		connects(t, service, pulsarconn.WithAuthenticator(token("from-env")))
		startRefusedServe(t, service, pulsarconn.WithAuthenticator(token("other")))
	})
	t.Run("flag wins over environment", func(t *testing.T) {
		t.Setenv(tokenEnv, "from-env")
		path := tempFile(t, "token", []byte("from-file"))
		out := startServe(t, "--listen", "pulsar://127.0.0.1:0", "--token-file", path)
		service := out.field(t, "serving ")[0]
		connects(t, service, pulsarconn.WithAuthenticator(token("from-file")))
		startRefusedServe(t, service, pulsarconn.WithAuthenticator(token("from-env")))
	})
}

func hs256(key []byte, sub string) string {
	enc := base64.RawURLEncoding
	u := enc.EncodeToString([]byte(`{"alg":"HS256"}`)) + "." + enc.EncodeToString([]byte(`{"sub":"`+sub+`"}`))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(u))
	return u + "." + enc.EncodeToString(m.Sum(nil))
}

// JWTs verified with a secret key, an anonymous role, authorization by
// namespace, and the address advertised in lookups.
func TestServeJWTAnonymousRoleAndGrants(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	out := startServe(t, "--listen", "pulsar://127.0.0.1:0",
		"--token-secret-key", tempFile(t, "secret.key", key),
		"--anonymous-role", "anonymous",
		"--super-user", "admin", "--tenant-admin", "public=anonymous",
		"--grant", "private/auth=token-principal",
		"--advertised-address", "localhost")
	service := out.field(t, "serving ")[0]
	ctx := testenv.Context(t)

	granted := connects(t, service, pulsarconn.WithAuthenticator(token(hs256(key, "token-principal"))))
	res, err := granted.LookupTopic(ctx, "persistent://private/auth/t", false)
	require.NoError(t, err)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(service, "pulsar://"))
	assert.Equal(t, "pulsar://localhost:"+port, res.BrokerURL, "the advertised address")

	anonymous := connects(t, service)
	_, err = anonymous.LookupTopic(ctx, "persistent://public/default/t", false)
	assert.NoError(t, err)
	_, err = anonymous.LookupTopic(ctx, "persistent://private/auth/t", false)
	assert.ErrorIs(t, err, pulsarconn.ErrAuthorization)

	startRefusedServe(t, service, pulsarconn.WithAuthenticator(token(hs256([]byte("another key"), "admin"))))
}

func TestServeTLSClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := testenv.NewAuthority(t, "test CA")
	serverPEM, serverKey := testenv.CertificatePEM(t, ca.Issue(t, testenv.Leaf{CommonName: "server", Names: []string{"127.0.0.1"}}))
	client, err := tlsauth.New(ca.Issue(t, testenv.Leaf{CommonName: "admin", Client: true}))
	require.NoError(t, err)
	caPEM := ca.PEM()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o600))
		return p
	}
	caFile := write("ca.pem", caPEM)
	out := startServe(t, "--listen", "", "--tls-listen", "pulsar+ssl://127.0.0.1:0",
		"--cert", write("server.pem", serverPEM), "--key", write("server-key.pem", serverKey),
		"--tls-trust-certs", caFile, "--super-user", "admin")
	tlsURL := out.field(t, "broker-0:")[0]
	ctx := testenv.Context(t)

	// With the certificate and method tls: role admin, a superuser.
	b := connects(t, tlsURL, pulsarconn.WithAuthenticator(client),
		pulsarconn.WithTransport(tlstransport.New(tlstransport.WithRootCAFile(caFile), tlstransport.WithClientCertificate(client.Certificate()))))
	_, err = b.LookupTopic(ctx, "persistent://private/auth/t", false)
	assert.NoError(t, err)

	// Method tls without a certificate is refused.
	startRefusedServe(t, tlsURL, pulsarconn.WithAuthenticator(client),
		pulsarconn.WithTransport(tlstransport.New(tlstransport.WithRootCAFile(caFile))))
}

func TestServeAuthUsageErrors(t *testing.T) {
	tok := tempFile(t, "token", []byte("x"))
	empty := tempFile(t, "empty", []byte("\n"))
	for _, args := range [][]string{
		{"serve", "--token", "a", "--token-file", tok},
		{"serve", "--token-file", empty},
		{"serve", "--grant", "private/auth"},
		{"serve", "--grant", "private=role"},
		{"serve", "--tenant-admin", "public="},
		{"serve", "--tls-trust-certs", tok},
	} {
		err := run(context.Background(), args, &strings.Builder{}, &strings.Builder{})
		assert.ErrorIs(t, err, errUsage, strings.Join(args, " "))
	}
}
