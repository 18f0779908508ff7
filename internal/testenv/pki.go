package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// Authority is a certificate authority made for a test (ECDSA P-256).
type Authority struct {
	// Cert is the CA's self-signed certificate.
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// serial numbers the certificates made in this process.
var serial atomic.Int64

// NewAuthority makes a CA named name, valid from an hour ago for a day.
func NewAuthority(t testing.TB, name string) *Authority {
	t.Helper()
	key := newKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testenv: CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testenv: CA certificate: %v", err)
	}
	return &Authority{Cert: cert, key: key}
}

// Pool returns a pool that trusts only the CA.
func (a *Authority) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.Cert)
	return p
}

// PEM returns the CA's certificate in PEM form.
func (a *Authority) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Cert.Raw})
}

// Leaf describes a certificate for an Authority to issue.
type Leaf struct {
	// CommonName is the subject's common name ("test" when empty).
	CommonName string
	// Names are the DNS names and IP addresses the certificate is for.
	Names []string
	// Client makes a certificate for client rather than server
	// authentication.
	Client bool
	// NotBefore and NotAfter bound its validity; zero values mean from
	// an hour ago for a day.
	NotBefore, NotAfter time.Time
}

// Issue makes a key and a certificate for l signed by the CA.
func (a *Authority) Issue(t testing.TB, l Leaf) tls.Certificate {
	t.Helper()
	key := newKey(t)
	if l.CommonName == "" {
		l.CommonName = "test"
	}
	if l.NotBefore.IsZero() {
		l.NotBefore = time.Now().Add(-time.Hour)
	}
	if l.NotAfter.IsZero() {
		l.NotAfter = time.Now().Add(24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: l.CommonName},
		NotBefore:    l.NotBefore,
		NotAfter:     l.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if l.Client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, n := range l.Names {
		if ip, err := netip.ParseAddr(n); err == nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, &key.PublicKey, a.key)
	if err != nil {
		t.Fatalf("testenv: certificate for %v: %v", l.Names, err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// CertificatePEM returns c's certificate chain and its key in PEM form, as
// files hold them.
func CertificatePEM(t testing.TB, c tls.Certificate) (chain, key []byte) {
	t.Helper()
	for _, der := range c.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatalf("testenv: key: %v", err)
	}
	return chain, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

// Loopback are the names of a server on this machine: localhost,
// 127.0.0.1 and ::1.
var Loopback = []string{"localhost", "127.0.0.1", "::1"}

// PKI is a CA and a server certificate it issued for Loopback.
type PKI struct {
	// CA is the authority.
	CA *Authority
	// Server is the server's certificate and key.
	Server tls.Certificate
}

// NewPKI makes a fresh CA and a server certificate for Loopback.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	ca := NewAuthority(t, "pulsarconn test CA")
	return &PKI{CA: ca, Server: ca.Issue(t, Leaf{CommonName: "localhost", Names: Loopback})}
}

// Roots returns a pool that trusts the CA.
func (p *PKI) Roots() *x509.CertPool { return p.CA.Pool() }

// ServerConfig is a TLS server configuration presenting the server
// certificate.
func (p *PKI) ServerConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.Server}, MinVersion: tls.VersionTLS12}
}

// ClientConfig is a TLS client configuration that trusts the CA.
func (p *PKI) ClientConfig() *tls.Config {
	return &tls.Config{RootCAs: p.Roots(), MinVersion: tls.VersionTLS12}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testenv: key: %v", err)
	}
	return key
}
