package tcp_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/tcp"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// The TCP transport is the default for pulsar:// URLs; give it explicitly
// to change its socket options. Here it reaches a fake broker on a free
// loopback port.
func Example() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := pulsartest.NewServer()
	if err := srv.Start(l); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	b, err := pulsarconn.Start(srv.URL(), pulsarconn.WithTransport(tcp.New(
		tcp.WithConnectTimeout(5*time.Second),
		tcp.WithKeepAlive(15*time.Second),
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
	fmt.Println(b.State())
	// Output: connected
}
