package realpulsar

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/auth/tlsauth"
	ptls "github.com/pulsarconn/pulsarconn/adapters/tls"
)

// mintClientCertificate issues a client certificate for common name cn,
// signed by the CA of this run (PULSAR_TLS_CA, with its key tls/ca.key in
// PULSAR_RUN_DIR), which the broker's TLS port trusts: its
// AuthenticationProviderTls then takes cn as the connection's role.
func mintClientCertificate(t testing.TB, rb realBroker, cn string) tls.Certificate {
	t.Helper()
	run := os.Getenv("PULSAR_RUN_DIR")
	if run == "" {
		t.Fatalf("PULSAR_RUN_DIR is not set: eval the variables `bash scripts/pulsar.sh env` prints")
	}
	caPEM, err := os.ReadFile(rb.CAFile)
	if err != nil {
		t.Fatalf("read the CA: %v", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(run, "tls", "ca.key"))
	if err != nil {
		t.Fatalf("read the CA's key: %v", err)
	}
	caBlock, _ := pem.Decode(caPEM)
	keyBlock, _ := pem.Decode(keyPEM)
	if caBlock == nil || keyBlock == nil {
		t.Fatalf("the CA or its key is not PEM")
	}
	ca, err := x509.ParseCertificate(caBlock.Bytes)
	if err != nil {
		t.Fatalf("parse the CA: %v", err)
	}
	// openssl writes PKCS#8 ("PRIVATE KEY"); older versions PKCS#1.
	caKey, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	if err != nil {
		if caKey, err = x509.ParsePKCS1PrivateKey(keyBlock.Bytes); err != nil {
			t.Fatalf("parse the CA's key: %v", err)
		}
	}
	// RSA, as the broker's own certificates are.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatalf("issue the client certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestTLSAuthentication connects to the broker's TLS port with the TLS
// Authenticator (auth method "tls") and its client certificate in the
// transport: the broker's AuthenticationProviderTls accepts it, with the
// certificate's common name as the role (the broker's log says so), and
// the connection serves a LOOKUP. The same Authenticator over a transport
// without the certificate is refused at once with ErrAuthenticationError.
func TestTLSAuthentication(t *testing.T) {
	rb := env(t)
	role := uniqueRole(t)
	auth, err := tlsauth.New(mintClientCertificate(t, rb, role))
	if err != nil {
		t.Fatalf("tlsauth.New: %v", err)
	}

	t.Run("with the certificate", func(t *testing.T) {
		ev := newEvents()
		b := start(t, rb.ServiceURLTLS,
			pulsarconn.WithAuthenticator(auth),
			pulsarconn.WithTransport(ptls.New(
				ptls.WithRootCAFile(rb.CAFile),
				ptls.WithClientCertificate(auth.Certificate()))),
			pulsarconn.WithObserver(ev))
		topic := fullName(topicName(t))
		if _, err := b.LookupTopic(bounded(t), topic, false); err != nil {
			t.Fatalf("LOOKUP %s: %v", topic, err)
		}
		if n := ev.count(isFailed); n != 0 {
			t.Errorf("%d failed handshakes with a trusted client certificate", n)
		}
		if lines := brokerLog(t, "connected with role="+role+" using authMethod=tls"); len(lines) != 1 {
			t.Errorf("the broker's log has %d connections of role %s by TLS; want 1:\n%s", len(lines), role, strings.Join(lines, "\n"))
		}
	})

	t.Run("without the certificate", func(t *testing.T) {
		b, ev := startRefused(t, rb.ServiceURLTLS,
			pulsarconn.WithAuthenticator(auth),
			pulsarconn.WithTransport(ptls.New(ptls.WithRootCAFile(rb.CAFile))))
		hf := within(t, ev.failed, safety, "HandshakeFailed")
		t.Logf("handshake failure: %v", hf.Err)
		if !errors.Is(hf.Err, pulsarconn.ErrAuthenticationError) {
			t.Fatalf("HandshakeFailed.Err = %v; want ErrAuthenticationError", hf.Err)
		}
		if n := ev.count(isOpened); n != 0 {
			t.Errorf("%d connections opened without a client certificate", n)
		}
		waitFinal(t, b)
	})
}
