package tls_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	tlstransport "github.com/pulsarconn/pulsarconn/adapters/tls"
)

// A transport for a pulsar+ssl:// broker whose certificate is signed by a
// private CA, with mutual TLS; the error tells which check failed.
func Example() {
	transport := tlstransport.New(
		tlstransport.WithRootCAFile("/etc/pulsar/ca.pem"),
		// tlstransport.WithClientCertificate(cert) for mutual TLS.
	)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := transport.Dial(ctx, "broker.example:6651")
	switch {
	case errors.Is(err, tlstransport.ErrUnknownAuthority):
		fmt.Println("the broker's certificate is not signed by our CA")
		return
	case errors.Is(err, tlstransport.ErrHostnameMismatch):
		fmt.Println("the broker's certificate is for another name")
		return
	case err != nil:
		fmt.Println(err)
		return
	}
	defer conn.Close()
	// Send CONNECT on conn ...
}
