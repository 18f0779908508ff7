package tls_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	ctls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// authority is a certificate authority made up for a test.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// newAuthority makes a self-signed CA named name.
func newAuthority(t *testing.T, name string) *authority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &authority{cert: cert, key: key}
}

// pool returns a pool holding only the CA.
func (a *authority) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.cert)
	return p
}

// pem returns the CA certificate in PEM form.
func (a *authority) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.cert.Raw})
}

// leaf describes a certificate for the CA to issue.
type leaf struct {
	names     []string // DNS names and IP addresses
	client    bool     // for client rather than server authentication
	notBefore time.Time
	notAfter  time.Time
}

// serial numbers the issued certificates.
var serial atomic.Int64

// issue signs a certificate for l.
func (a *authority) issue(t *testing.T, l leaf) ctls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	if l.notBefore.IsZero() {
		l.notBefore = time.Now().Add(-time.Hour)
	}
	if l.notAfter.IsZero() {
		l.notAfter = time.Now().Add(24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(100 + serial.Add(1)),
		Subject:      pkix.Name{CommonName: "test"},
		NotBefore:    l.notBefore,
		NotAfter:     l.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if l.client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, n := range l.names {
		if ip, err := netip.ParseAddr(n); err == nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	require.NoError(t, err)
	return ctls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// pki is the set of certificates the tests use.
type pki struct {
	ca, otherCA *authority
	server      ctls.Certificate // for localhost and 127.0.0.1, signed by ca
	untrusted   ctls.Certificate // as server, signed by otherCA
	otherName   ctls.Certificate // for broker.example only, signed by ca
	expired     ctls.Certificate // as server, expired yesterday
	client      ctls.Certificate // client certificate signed by ca
	rogueClient ctls.Certificate // client certificate signed by otherCA
}

// newPKI makes a fresh pki.
func newPKI(t *testing.T) *pki {
	t.Helper()
	ca, other := newAuthority(t, "test CA"), newAuthority(t, "other CA")
	local := []string{"localhost", "127.0.0.1"}
	now := time.Now()
	return &pki{
		ca:          ca,
		otherCA:     other,
		server:      ca.issue(t, leaf{names: local}),
		untrusted:   other.issue(t, leaf{names: local}),
		otherName:   ca.issue(t, leaf{names: []string{"broker.example"}}),
		expired:     ca.issue(t, leaf{names: local, notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-24 * time.Hour)}),
		client:      ca.issue(t, leaf{client: true}),
		rogueClient: other.issue(t, leaf{client: true}),
	}
}
