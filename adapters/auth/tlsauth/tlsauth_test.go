package tlsauth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/adapters/auth/internal/authtest"
	"github.com/pulsarconn/pulsarconn/adapters/auth/tlsauth"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
)

// refresh is the auth_data of the AUTH_CHALLENGE with which a broker asks a
// live connection for fresh credentials.
var refresh = []byte("PulsarAuthRefresh")

func TestCredentials(t *testing.T) {
	cert := testenv.NewAuthority(t, "test CA").Issue(t, testenv.Leaf{CommonName: "alice", Client: true})
	a, err := tlsauth.New(cert)
	require.NoError(t, err)
	assert.Equal(t, "tls", a.Name())
	assert.Equal(t, cert.Certificate, a.Certificate().Certificate)
	assert.Equal(t, cert.PrivateKey, a.Certificate().PrivateKey)
	ctx := authtest.Context(t)

	got, err := a.Initial(ctx)
	require.NoError(t, err)
	assert.NotNil(t, got, "auth_data is present and empty, as the official clients send it")
	assert.Empty(t, got)
	for _, challenge := range [][]byte{refresh, []byte("anything"), nil} {
		got, err = a.Challenge(ctx, challenge)
		require.NoError(t, err)
		assert.Empty(t, got, "challenge %q", challenge)
	}

	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err = a.Initial(done)
	require.ErrorIs(t, err, context.Canceled)
	_, err = a.Challenge(done, refresh)
	require.ErrorIs(t, err, context.Canceled)
}

func TestNewValidates(t *testing.T) {
	cert := testenv.NewAuthority(t, "test CA").Issue(t, testenv.Leaf{Client: true})
	tests := []struct {
		name    string
		cert    tls.Certificate
		wantMsg string
	}{
		{"zero certificate", tls.Certificate{}, "no certificate"},
		{"no private key", tls.Certificate{Certificate: cert.Certificate}, "no private key"},
		{"not a certificate", tls.Certificate{Certificate: [][]byte{[]byte("junk")}, PrivateKey: cert.PrivateKey}, "x509"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := tlsauth.New(tt.cert)
			assert.Nil(t, a)
			require.ErrorIs(t, err, tlsauth.ErrCertificate)
			assert.Contains(t, err.Error(), tt.wantMsg)
		})
	}
}

func TestFromFiles(t *testing.T) {
	dir := t.TempDir()
	cert := testenv.NewAuthority(t, "test CA").Issue(t, testenv.Leaf{CommonName: "alice", Client: true})
	chain, key := testenv.CertificatePEM(t, cert)
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	require.NoError(t, os.WriteFile(certFile, chain, 0o600))
	require.NoError(t, os.WriteFile(keyFile, key, 0o600))

	a, err := tlsauth.FromFiles(certFile, keyFile)
	require.NoError(t, err)
	assert.Equal(t, cert.Certificate, a.Certificate().Certificate)
	assert.Equal(t, `tlsauth.Authenticator{subject: "CN=alice", key: [redacted]}`, a.String())

	missing := filepath.Join(dir, "missing.pem")
	for _, files := range [][2]string{{missing, keyFile}, {certFile, missing}, {keyFile, keyFile}, {certFile, certFile}} {
		a, err := tlsauth.FromFiles(files[0], files[1])
		assert.Nil(t, a)
		require.ErrorIs(t, err, tlsauth.ErrCertificate, "%v", files)
		assert.Contains(t, err.Error(), files[0])
		assert.Contains(t, err.Error(), files[1])
		// The key's PEM body never appears in an error.
		authtest.NoSecretInErrors(t, string(key[28:60]), err)
		t.Log(err)
	}
}

// TestNoKeyPrinted: no fmt verb prints the private key, even an Ed25519
// key, which is a byte slice that fmt would print in full if it reached it.
func TestNoKeyPrinted(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "alice"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	require.NoError(t, err)
	a, err := tlsauth.New(tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv})
	require.NoError(t, err)

	seed := priv.Seed()
	for _, secret := range []string{
		fmt.Sprint(seed)[1:40],        // as %v prints a byte slice
		hex.EncodeToString(seed),      // as %x prints it
		fmt.Sprintf("%q", seed)[1:20], // as %q prints it
	} {
		authtest.NoSecretPrinted(t, secret, a)
	}
	assert.Equal(t, `tlsauth.Authenticator{subject: "CN=alice", key: [redacted]}`, fmt.Sprint(a))
}
