package quic_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"

	"github.com/pulsarconn/pulsarconn/adapters/quic"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
)

// listen listens on a free UDP port of 127.0.0.1 until the test ends.
func listen(t *testing.T, pki *testenv.PKI, opts ...quic.Option) net.Listener {
	t.Helper()
	l, err := quic.Listen("127.0.0.1:0", pki.ServerConfig(), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l
}

// makePipe dials l and accepts the connection. A QUIC stream reaches the
// listener with its first bytes, so the client writes one, which the server
// side consumes before the pipe is handed over.
func makePipe(ctx context.Context, l net.Listener, clientTLS *tls.Config) (c1, c2 net.Conn, err error) {
	c, err := quic.New(clientTLS).DialConn(ctx, l.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	if _, err := c.Write([]byte{'!'}); err != nil {
		c.Close()
		return nil, nil, err
	}
	s, err := l.Accept()
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	var b [1]byte
	if _, err := io.ReadFull(s, b[:]); err != nil || b[0] != '!' {
		c.Close()
		s.Close()
		return nil, nil, errors.Join(errors.New("first byte lost"), err)
	}
	return c, s, nil
}

func TestNetConn(t *testing.T) {
	pki := testenv.NewPKI(t)
	l := listen(t, pki)
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		c1, c2, err = makePipe(testenv.Context(t), l, pki.ClientConfig())
		if err != nil {
			return nil, nil, nil, err
		}
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}

func TestRoundTrip(t *testing.T) {
	pki := testenv.NewPKI(t)
	l := listen(t, pki)
	ctx := testenv.Context(t)

	accepted := make(chan net.Conn, 1)
	go func() {
		s, err := l.Accept()
		assert.NoError(t, err)
		accepted <- s
	}()
	c, err := quic.New(pki.ClientConfig()).Dial(ctx, l.Addr().String())
	require.NoError(t, err)
	conn := c.(*quic.Conn)
	_, err = c.Write([]byte("ping from client"))
	require.NoError(t, err)
	var s net.Conn
	select {
	case s = <-accepted:
	case <-ctx.Done():
		t.Fatal("no connection accepted")
	}
	require.NotNil(t, s)
	defer s.Close()

	buf := make([]byte, len("ping from client"))
	_, err = io.ReadFull(s, buf)
	require.NoError(t, err)
	assert.Equal(t, "ping from client", string(buf))
	_, err = s.Write([]byte("pong from server"))
	require.NoError(t, err)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	assert.Equal(t, "pong from server", string(buf))

	assert.Equal(t, l.Addr().String(), conn.RemoteAddr().String())
	assert.Equal(t, conn.LocalAddr().(*net.UDPAddr).Port, s.RemoteAddr().(*net.UDPAddr).Port)
	assert.Equal(t, "udp", s.LocalAddr().Network())

	// The client closes: the server reads io.EOF, the client's own calls
	// fail with net.ErrClosed.
	require.NoError(t, c.Close())
	_, err = s.Read(buf)
	assert.Equal(t, io.EOF, err)
	_, err = conn.Read(buf)
	assert.ErrorIs(t, err, net.ErrClosed)
	_, err = conn.Write(buf)
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.ErrorIs(t, conn.SetDeadline(time.Time{}), net.ErrClosed)
	assert.ErrorIs(t, c.Close(), net.ErrClosed, "second Close")
}

// Close delivers what was written before it, even when the peer has not
// read it yet: closing a QUIC connection would discard it.
func TestCloseDeliversWrittenData(t *testing.T) {
	pki := testenv.NewPKI(t)
	l := listen(t, pki)
	c, s, err := makePipe(testenv.Context(t), l, pki.ClientConfig())
	require.NoError(t, err)
	defer s.Close()

	want := bytes.Repeat([]byte("pulsar frames "), 64<<10) // ~900 KiB
	written := make(chan error, 1)
	go func() {
		_, err := c.Write(want)
		written <- errors.Join(err, c.Close())
	}()
	got, err := io.ReadAll(s)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got), "got %d bytes, want %d", len(got), len(want))
	require.NoError(t, <-written)
}

// The peer's closing of the connection ends a Write with ErrPeerClosed once
// its linger ends, here at once.
func TestWriteAfterPeerClosedConnection(t *testing.T) {
	pki := testenv.NewPKI(t)
	l := listen(t, pki, quic.WithLinger(0))
	c, s, err := makePipe(testenv.Context(t), l, pki.ClientConfig())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, s.Close())

	buf := make([]byte, 16)
	_, err = c.Read(buf)
	assert.Equal(t, io.EOF, err)
	for err = nil; err == nil; {
		_, err = c.Write(buf)
	}
	assert.ErrorIs(t, err, quic.ErrPeerClosed)
}

func TestCloseUnblocksReadAndWrite(t *testing.T) {
	pki := testenv.NewPKI(t)
	l := listen(t, pki)
	c, s, err := makePipe(testenv.Context(t), l, pki.ClientConfig())
	require.NoError(t, err)
	defer s.Close()

	errs := make(chan error, 2)
	go func() {
		_, err := c.Read(make([]byte, 16))
		errs <- err
	}()
	go func() {
		// The server does not read: this Write fills the flow-control
		// window and blocks.
		var err error
		for err == nil {
			_, err = c.Write(make([]byte, 64<<10))
		}
		errs <- err
	}()
	// Wait until the writer is blocked, i.e. the server holds data.
	_, err = io.ReadFull(s, make([]byte, 1))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	for range 2 {
		assert.ErrorIs(t, <-errs, net.ErrClosed)
	}
}

func TestDeadlines(t *testing.T) {
	pki := testenv.NewPKI(t)
	l := listen(t, pki)
	c, s, err := makePipe(testenv.Context(t), l, pki.ClientConfig())
	require.NoError(t, err)
	defer c.Close()
	defer s.Close()

	require.NoError(t, c.SetDeadline(time.Now().Add(-time.Second)))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout())
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	_, err = c.Write([]byte("x"))
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout())

	require.NoError(t, c.SetDeadline(time.Time{}))
	_, err = c.Write([]byte("x"))
	require.NoError(t, err)
}

// Dial gives up when its context ends, though nobody answers: the address
// is a UDP socket that reads the client's Initial packet and says nothing.
func TestDialHonoursContext(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer silent.Close()
	tr := quic.New(&tls.Config{})

	t.Run("cancelled while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(testenv.Context(t))
		dialed := make(chan error, 1)
		go func() {
			_, err := tr.Dial(ctx, silent.LocalAddr().String())
			dialed <- err
		}()
		_, _, err := silent.ReadFrom(make([]byte, 2048)) // the Initial
		require.NoError(t, err)
		cancel()
		select {
		case err := <-dialed:
			assert.ErrorIs(t, err, context.Canceled)
			assert.Contains(t, err.Error(), silent.LocalAddr().String())
		case <-testenv.Context(t).Done():
			t.Fatal("Dial ignored the cancelled context")
		}
	})
	t.Run("cancelled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := tr.Dial(ctx, silent.LocalAddr().String())
		assert.ErrorIs(t, err, context.Canceled)
	})
}

func TestDialBadAddress(t *testing.T) {
	_, err := quic.New(nil).Dial(testenv.Context(t), "no-port")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "quic: dial no-port")
}

// A client that offers another application protocol fails the handshake,
// and the listener goes on serving.
func TestALPNMismatch(t *testing.T) {
	pki := testenv.NewPKI(t)
	l := listen(t, pki)
	ctx := testenv.Context(t)

	cfg := pki.ClientConfig()
	cfg.NextProtos = []string{"h3"}
	_, err := quicgo.DialAddr(ctx, l.Addr().String(), cfg, nil)
	require.Error(t, err)
	var te *quicgo.TransportError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, quicgo.TransportErrorCode(0x100+120), te.ErrorCode, "no_application_protocol alert")

	c, s, err := makePipe(ctx, l, pki.ClientConfig())
	require.NoError(t, err)
	c.Close()
	s.Close()
}

// The client checks the server's certificate against its roots and the
// server name, which defaults to the dialled host.
func TestServerVerification(t *testing.T) {
	pki := testenv.NewPKI(t)
	l := listen(t, pki)
	ctx := testenv.Context(t)
	addr := l.Addr().String()

	_, err := quic.New(&tls.Config{}).Dial(ctx, addr)
	var unknown x509.UnknownAuthorityError
	assert.ErrorAs(t, err, &unknown, "system roots do not know the test certificate")

	cfg := pki.ClientConfig()
	cfg.ServerName = "pulsar.example"
	_, err = quic.New(cfg).Dial(ctx, addr)
	assert.ErrorContains(t, err, "pulsar.example", "the name is checked")

	cfg.ServerName = "localhost" // in the certificate, as 127.0.0.1 is
	c, err := quic.New(cfg).Dial(ctx, addr)
	require.NoError(t, err)
	c.Close()
}

func TestListenerClose(t *testing.T) {
	pki := testenv.NewPKI(t)
	l, err := quic.Listen("127.0.0.1:0", pki.ServerConfig())
	require.NoError(t, err)
	accepted := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		accepted <- err
	}()
	require.NoError(t, l.Close())
	assert.ErrorIs(t, <-accepted, net.ErrClosed)
	_, err = l.Accept()
	assert.ErrorIs(t, err, net.ErrClosed)
}

// An accepted connection outlives its listener, as a TCP one does.
func TestAcceptedConnOutlivesListener(t *testing.T) {
	pki := testenv.NewPKI(t)
	l, err := quic.Listen("127.0.0.1:0", pki.ServerConfig())
	require.NoError(t, err)
	c, s, err := makePipe(testenv.Context(t), l, pki.ClientConfig())
	require.NoError(t, err)
	defer c.Close()
	defer s.Close()
	require.NoError(t, l.Close())

	_, err = c.Write([]byte("still here"))
	require.NoError(t, err)
	buf := make([]byte, len("still here"))
	_, err = io.ReadFull(s, buf)
	require.NoError(t, err)
	assert.Equal(t, "still here", string(buf))
}

func TestListenBadAddress(t *testing.T) {
	_, err := quic.Listen("256.0.0.1:0", testenv.NewPKI(t).ServerConfig())
	assert.ErrorContains(t, err, "quic: listen 256.0.0.1:0")
}
