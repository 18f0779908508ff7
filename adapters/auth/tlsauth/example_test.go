package tlsauth_test

import (
	"context"
	"log"
	"time"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/auth/tlsauth"
	tlstransport "github.com/pulsarconn/pulsarconn/adapters/tls"
)

// A Broker authenticated by its client certificate, for a broker with
// AuthenticationProviderTls: one Authenticator gives both the auth method
// for CONNECT and the certificate for the TLS transport. The broker's
// role for the connection is the certificate's common name.
func Example() {
	auth, err := tlsauth.FromFiles("/etc/pulsar/client.pem", "/etc/pulsar/client-key.pem")
	if err != nil {
		log.Fatal(err)
	}
	b, err := pulsarconn.Start("pulsar+ssl://broker.example:6651",
		pulsarconn.WithAuthenticator(auth),
		pulsarconn.WithTransport(tlstransport.New(
			tlstransport.WithRootCAFile("/etc/pulsar/ca.pem"),
			// Without this the broker sees no certificate and refuses
			// the CONNECT (ErrAuthenticationError).
			tlstransport.WithClientCertificate(auth.Certificate()),
		)))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.WaitConnected(ctx); err != nil {
		log.Fatal(err)
	}
}
