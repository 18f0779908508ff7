package quic_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"math/big"
	"net"
	"time"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/quic"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// loopbackTLS makes a self-signed certificate for 127.0.0.1 and the TLS
// configurations of a server that presents it and a client that trusts it.
func loopbackTLS() (server, client *tls.Config) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		log.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: roots}
}

// The fake broker served over QUIC on a free loopback port, and a Broker
// that reaches it with the QUIC transport. A real broker speaks TCP only:
// put "pulsarconn bridge" in front of it (docs/quic.md).
func Example() {
	serverTLS, clientTLS := loopbackTLS()
	l, err := quic.Listen("127.0.0.1:0", serverTLS)
	if err != nil {
		log.Fatal(err)
	}
	srv := pulsartest.NewServer()
	if err := srv.Start(l); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.SetPartitions("persistent://public/default/q", 3)

	b, err := pulsarconn.Start(srv.URL(), pulsarconn.WithTransport(quic.New(clientTLS)))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := b.PartitionedTopicMetadata(ctx, "persistent://public/default/q")
	fmt.Println(n, err)
	// Output: 3 <nil>
}
