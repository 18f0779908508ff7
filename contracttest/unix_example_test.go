package contracttest_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulsarconn/pulsarconn/ports"

	"github.com/pulsarconn/pulsarconn/contracttest"
)

// UnixTransport is the example adapter of docs/adapters.md: it carries
// pulsar://host:port connections over Unix domain sockets, one socket file
// per broker address, in Dir.
type UnixTransport struct {
	Dir string
}

var _ ports.Transport = (*UnixTransport)(nil)

// Path is the socket file for a "host:port" address.
func (u *UnixTransport) Path(address string) string {
	return filepath.Join(u.Dir, strings.ReplaceAll(address, ":", "_")+".sock")
}

// Dial implements ports.Transport; a *net.UnixConn is a ports.Conn.
func (u *UnixTransport) Dial(ctx context.Context, address string) (ports.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", u.Path(address))
}

// TestUnixTransportContract certifies the example adapter, exactly as
// docs/adapters.md shows.
func TestUnixTransportContract(t *testing.T) {
	contracttest.Run(t, func(t testing.TB) contracttest.Env {
		tr := &UnixTransport{Dir: t.TempDir()}
		l, err := net.Listen("unix", tr.Path("broker:6650"))
		if err != nil {
			t.Fatal(err)
		}
		return contracttest.Env{Listener: l, URL: "pulsar://broker:6650", Transport: tr}
	})
}
