package testenv_test

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// The server certificate verifies for every loopback name against the CA,
// and for nothing else; a client certificate verifies for client use.
func TestPKI(t *testing.T) {
	p := testenv.NewPKI(t)
	leaf, err := x509.ParseCertificate(p.Server.Certificate[0])
	require.NoError(t, err)
	for _, name := range testenv.Loopback {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: p.Roots(), DNSName: name})
		assert.NoError(t, err, name)
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: p.Roots(), DNSName: "broker.example"})
	assert.Error(t, err)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: testenv.NewAuthority(t, "other").Pool(), DNSName: "localhost"})
	assert.Error(t, err, "another CA does not vouch for it")

	client := p.CA.Issue(t, testenv.Leaf{CommonName: "admin", Client: true})
	cl, err := x509.ParseCertificate(client.Certificate[0])
	require.NoError(t, err)
	assert.Equal(t, "admin", cl.Subject.CommonName)
	_, err = cl.Verify(x509.VerifyOptions{Roots: p.Roots(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	assert.NoError(t, err)

	expired := p.CA.Issue(t, testenv.Leaf{Names: testenv.Loopback, NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	ex, err := x509.ParseCertificate(expired.Certificate[0])
	require.NoError(t, err)
	_, err = ex.Verify(x509.VerifyOptions{Roots: p.Roots(), DNSName: "localhost"})
	assert.Error(t, err)

	chain, key := testenv.CertificatePEM(t, p.Server)
	pair, err := tls.X509KeyPair(chain, key)
	require.NoError(t, err, "the PEM forms load back")
	assert.Equal(t, p.Server.Certificate, pair.Certificate)
}

// A TLS handshake with ServerConfig and ClientConfig succeeds over a
// loopback socket.
func TestPKIHandshake(t *testing.T) {
	p := testenv.NewPKI(t)
	l, err := tls.Listen("tcp", "127.0.0.1:0", p.ServerConfig())
	require.NoError(t, err)
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", l.Addr().String(), p.ClientConfig())
	require.NoError(t, err)
	assert.NoError(t, c.Close())
}

// Memory's fake broker answers CONNECT on its network, inside a synctest
// bubble, and is closed with the test.
func TestMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := testenv.Memory(t)
		assert.Equal(t, "pulsar://"+testenv.Host, e.URL)
		c, err := e.Network.Dial(testenv.Context(t), testenv.Host)
		require.NoError(t, err)
		defer c.Close()
		connect, err := frame.AppendCommand(nil, &pulsarpb.BaseCommand{
			Type:    pulsarpb.BaseCommand_CONNECT.Enum(),
			Connect: &pulsarpb.CommandConnect{ClientVersion: proto.String("test"), ProtocolVersion: proto.Int32(frame.ProtocolVersion)},
		})
		require.NoError(t, err)
		_, err = c.Write(connect)
		require.NoError(t, err)
		f, err := frame.NewReader(c, 0).Next()
		require.NoError(t, err)
		assert.Equal(t, pulsarpb.BaseCommand_CONNECTED, f.Command.GetType())
		assert.Equal(t, 1, e.Server.Received(pulsarpb.BaseCommand_CONNECT))
	})
}
