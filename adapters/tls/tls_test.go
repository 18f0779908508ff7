package tls_test

import (
	"context"
	"crypto/sha256"
	ctls "crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"

	tlstransport "github.com/pulsarconn/pulsarconn/adapters/tls"
	"github.com/pulsarconn/pulsarconn/ports"
)

// serve runs a TLS echo server with cfg on a loopback port until the test
// ends, and returns its port.
func serve(t *testing.T, cfg *ctls.Config) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			raw, err := l.Accept()
			if err != nil {
				return
			}
			c := ctls.Server(raw, cfg)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				if err := c.Handshake(); err != nil {
					return
				}
				_, _ = io.Copy(c, c)
			})
		}
	})
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	_, port, err := net.SplitHostPort(l.Addr().String())
	require.NoError(t, err)
	return port
}

// serverConfig is a server configuration presenting cert.
func serverConfig(cert ctls.Certificate) *ctls.Config {
	return &ctls.Config{Certificates: []ctls.Certificate{cert}}
}

// roundTrip dials address with tr, sends "PING" and reads the echo back. It
// returns the first error: from Dial, Write or Read.
func roundTrip(t *testing.T, tr ports.Transport, address string) error {
	t.Helper()
	c, err := tr.Dial(t.Context(), address)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte("PING")); err != nil {
		return err
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	assert.Equal(t, "PING", string(buf))
	return nil
}

func TestDial(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(caFile, p.ca.PEM(), 0o600))
	junkFile := filepath.Join(dir, "junk.pem")
	require.NoError(t, os.WriteFile(junkFile, []byte("not a certificate"), 0o600))

	requireClient := func(maxVersion uint16) *ctls.Config {
		cfg := serverConfig(p.server)
		cfg.ClientAuth = ctls.RequireAndVerifyClientCert
		cfg.ClientCAs = p.ca.Pool()
		cfg.MaxVersion = maxVersion
		return cfg
	}
	tls11 := serverConfig(p.server)
	tls11.MinVersion, tls11.MaxVersion = ctls.VersionTLS10, ctls.VersionTLS11

	tests := []struct {
		name    string
		server  *ctls.Config
		host    string // default 127.0.0.1
		tr      *tlstransport.Transport
		wantErr error // nil: the round trip works
	}{
		{
			name:   "good chain",
			server: serverConfig(p.server),
			tr:     tlstransport.New(tlstransport.WithRootCAs(p.ca.Pool())),
		},
		{
			name:   "good chain by name",
			server: serverConfig(p.server),
			host:   "localhost",
			tr:     tlstransport.New(tlstransport.WithRootCAs(p.ca.Pool())),
		},
		{
			name:   "root CA file",
			server: serverConfig(p.server),
			tr:     tlstransport.New(tlstransport.WithRootCAFile(caFile)),
		},
		{
			name:   "base config",
			server: serverConfig(p.server),
			tr:     tlstransport.New(tlstransport.WithConfig(&ctls.Config{RootCAs: p.ca.Pool()})),
		},
		{
			name:    "unknown CA",
			server:  serverConfig(p.untrusted),
			tr:      tlstransport.New(tlstransport.WithRootCAs(p.ca.Pool())),
			wantErr: tlstransport.ErrUnknownAuthority,
		},
		{
			name:    "unknown CA, system roots",
			server:  serverConfig(p.server),
			tr:      tlstransport.New(),
			wantErr: tlstransport.ErrUnknownAuthority,
		},
		{
			name:   "unknown CA, insecure",
			server: serverConfig(p.untrusted),
			tr:     tlstransport.New(tlstransport.WithInsecureSkipVerify()),
		},
		{
			name:    "server name override mismatches",
			server:  serverConfig(p.server),
			tr:      tlstransport.New(tlstransport.WithRootCAs(p.ca.Pool()), tlstransport.WithServerName("wrong.example")),
			wantErr: tlstransport.ErrHostnameMismatch,
		},
		{
			name:    "certificate for another name",
			server:  serverConfig(p.otherName),
			tr:      tlstransport.New(tlstransport.WithRootCAs(p.ca.Pool())),
			wantErr: tlstransport.ErrHostnameMismatch,
		},
		{
			name:   "server name override matches",
			server: serverConfig(p.otherName),
			tr:     tlstransport.New(tlstransport.WithRootCAs(p.ca.Pool()), tlstransport.WithServerName("broker.example")),
		},
		{
			name:   "option overrides base server name",
			server: serverConfig(p.otherName),
			tr: tlstransport.New(
				tlstransport.WithServerName("broker.example"),
				tlstransport.WithConfig(&ctls.Config{RootCAs: p.ca.Pool(), ServerName: "wrong.example"}),
			),
		},
		{
			name:    "expired certificate",
			server:  serverConfig(p.expired),
			tr:      tlstransport.New(tlstransport.WithRootCAs(p.ca.Pool())),
			wantErr: tlstransport.ErrCertificateExpired,
		},
		{
			name:    "client certificate missing, TLS 1.2",
			server:  requireClient(ctls.VersionTLS12),
			tr:      tlstransport.New(tlstransport.WithRootCAs(p.ca.Pool())),
			wantErr: tlstransport.ErrClientCertificateRequired,
		},
		{
			// Under TLS 1.3 the server checks the client certificate after
			// the client's handshake is done: the alert arrives on Read.
			name:    "client certificate missing, TLS 1.3",
			server:  requireClient(ctls.VersionTLS13),
			tr:      tlstransport.New(tlstransport.WithRootCAs(p.ca.Pool())),
			wantErr: tlstransport.ErrClientCertificateRequired,
		},
		{
			name:    "client certificate untrusted",
			server:  requireClient(0),
			tr:      tlstransport.New(tlstransport.WithRootCAs(p.ca.Pool()), tlstransport.WithClientCertificate(p.rogueClient)),
			wantErr: tlstransport.ErrClientCertificateRequired,
		},
		{
			name:   "client certificate given, TLS 1.2",
			server: requireClient(ctls.VersionTLS12),
			tr:     tlstransport.New(tlstransport.WithRootCAs(p.ca.Pool()), tlstransport.WithClientCertificate(p.client)),
		},
		{
			name:   "client certificate given, TLS 1.3",
			server: requireClient(ctls.VersionTLS13),
			tr:     tlstransport.New(tlstransport.WithRootCAs(p.ca.Pool()), tlstransport.WithClientCertificate(p.client)),
		},
		{
			name:    "server limited to TLS 1.1",
			server:  tls11,
			tr:      tlstransport.New(tlstransport.WithRootCAs(p.ca.Pool())),
			wantErr: tlstransport.ErrHandshake,
		},
		{
			name:   "TLS 1.2 minimum kept over a lower base",
			server: tls11,
			tr: tlstransport.New(tlstransport.WithConfig(&ctls.Config{
				RootCAs: p.ca.Pool(), MinVersion: ctls.VersionTLS10,
			})),
			wantErr: tlstransport.ErrHandshake,
		},
		{
			name:   "base config below the minimum",
			server: serverConfig(p.server),
			tr: tlstransport.New(tlstransport.WithConfig(&ctls.Config{
				RootCAs: p.ca.Pool(), MaxVersion: ctls.VersionTLS11,
			})),
			wantErr: tlstransport.ErrHandshake,
		},
		{
			name:    "root CA file missing",
			server:  serverConfig(p.server),
			tr:      tlstransport.New(tlstransport.WithRootCAFile(filepath.Join(dir, "missing.pem"))),
			wantErr: fs.ErrNotExist,
		},
		{
			name:    "root CA file without certificates",
			server:  serverConfig(p.server),
			tr:      tlstransport.New(tlstransport.WithRootCAFile(junkFile)),
			wantErr: tlstransport.ErrRootCAFile,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := tt.host
			if host == "" {
				host = "127.0.0.1"
			}
			address := net.JoinHostPort(host, serve(t, tt.server))
			err := roundTrip(t, tt.tr, address)
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			t.Log(err)
		})
	}
}

// errNotPinned is the pinning callback's refusal in TestInsecureBaseConfig.
var errNotPinned = errors.New("not the pinned certificate")

// pin returns a VerifyPeerCertificate that accepts only cert's leaf, by
// its SHA-256: the check a user who pins a certificate does instead of
// chain verification.
func pin(cert ctls.Certificate) func([][]byte, [][]*x509.Certificate) error {
	want := sha256.Sum256(cert.Certificate[0])
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 || sha256.Sum256(raw[0]) != want {
			return errNotPinned
		}
		return nil
	}
}

// TestInsecureBaseConfig: a WithConfig base with InsecureSkipVerify is
// refused before anything is dialled unless it verifies the broker itself
// (VerifyPeerCertificate or VerifyConnection) or WithInsecureSkipVerify
// says verification is to be off; a pinning callback then decides.
func TestInsecureBaseConfig(t *testing.T) {
	p := newPKI(t)
	// p.untrusted is signed by a CA nobody trusts: only the pin or
	// WithInsecureSkipVerify can let it through.
	address := net.JoinHostPort("127.0.0.1", serve(t, serverConfig(p.untrusted)))
	pinConnection := func(cert ctls.Certificate) func(ctls.ConnectionState) error {
		verify := pin(cert)
		return func(cs ctls.ConnectionState) error {
			raw := make([][]byte, len(cs.PeerCertificates))
			for i, c := range cs.PeerCertificates {
				raw[i] = c.Raw
			}
			return verify(raw, nil)
		}
	}
	tests := []struct {
		name    string
		tr      *tlstransport.Transport
		wantErr error
	}{
		{
			name:    "InsecureSkipVerify alone",
			tr:      tlstransport.New(tlstransport.WithConfig(&ctls.Config{InsecureSkipVerify: true})),
			wantErr: tlstransport.ErrInsecureConfig,
		},
		{
			name: "InsecureSkipVerify with other options",
			tr: tlstransport.New(
				tlstransport.WithConfig(&ctls.Config{InsecureSkipVerify: true, RootCAs: p.otherCA.Pool()}),
				tlstransport.WithRootCAs(p.otherCA.Pool())),
			wantErr: tlstransport.ErrInsecureConfig,
		},
		{
			name: "InsecureSkipVerify and WithInsecureSkipVerify",
			tr: tlstransport.New(
				tlstransport.WithConfig(&ctls.Config{InsecureSkipVerify: true}),
				tlstransport.WithInsecureSkipVerify()),
		},
		{
			name: "pinned by VerifyPeerCertificate",
			tr: tlstransport.New(tlstransport.WithConfig(&ctls.Config{
				InsecureSkipVerify: true, VerifyPeerCertificate: pin(p.untrusted),
			})),
		},
		{
			name: "another certificate pinned by VerifyPeerCertificate",
			tr: tlstransport.New(tlstransport.WithConfig(&ctls.Config{
				InsecureSkipVerify: true, VerifyPeerCertificate: pin(p.server),
			})),
			wantErr: errNotPinned,
		},
		{
			name: "pinned by VerifyConnection",
			tr: tlstransport.New(tlstransport.WithConfig(&ctls.Config{
				InsecureSkipVerify: true, VerifyConnection: pinConnection(p.untrusted),
			})),
		},
		{
			name: "another certificate pinned by VerifyConnection",
			tr: tlstransport.New(tlstransport.WithConfig(&ctls.Config{
				InsecureSkipVerify: true, VerifyConnection: pinConnection(p.server),
			})),
			wantErr: errNotPinned,
		},
		{
			name:    "VerifyPeerCertificate without InsecureSkipVerify still verifies the chain",
			tr:      tlstransport.New(tlstransport.WithConfig(&ctls.Config{VerifyPeerCertificate: pin(p.untrusted)})),
			wantErr: tlstransport.ErrUnknownAuthority,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := roundTrip(t, tt.tr, address)
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			t.Log(err)
		})
	}

	// The refusal comes before any connection is made: against an address
	// where nothing listens, the error is the configuration's, not the
	// connect's.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := l.Addr().String()
	require.NoError(t, l.Close())
	_, err = tlstransport.New(tlstransport.WithConfig(&ctls.Config{InsecureSkipVerify: true})).Dial(t.Context(), closed)
	require.ErrorIs(t, err, tlstransport.ErrInsecureConfig)
	assert.ErrorContains(t, err, "WithInsecureSkipVerify", "the error names the option to use")
	var op *net.OpError
	assert.False(t, errors.As(err, &op), "nothing was dialled: %v", err)
}

func TestDialErrorsWrapCause(t *testing.T) {
	p := newPKI(t)
	address := net.JoinHostPort("127.0.0.1", serve(t, serverConfig(p.untrusted)))
	_, err := tlstransport.New(tlstransport.WithRootCAs(p.ca.Pool())).Dial(t.Context(), address)
	require.ErrorIs(t, err, tlstransport.ErrUnknownAuthority)
	var verr *ctls.CertificateVerificationError
	require.ErrorAs(t, err, &verr, "crypto/tls's error is wrapped too")
	assert.NotErrorIs(t, err, tlstransport.ErrHandshake)
}

func TestDialServerNameDefaultsToHost(t *testing.T) {
	p := newPKI(t)
	port := serve(t, serverConfig(p.server))
	c, err := tlstransport.New(tlstransport.WithRootCAs(p.ca.Pool())).Dial(t.Context(), net.JoinHostPort("localhost", port))
	require.NoError(t, err)
	defer c.Close()
	state := c.(interface{ ConnectionState() ctls.ConnectionState }).ConnectionState()
	assert.Equal(t, "localhost", state.ServerName)
	assert.GreaterOrEqual(t, state.Version, uint16(ctls.VersionTLS12))
}

func TestWithConfigClones(t *testing.T) {
	p := newPKI(t)
	port := serve(t, serverConfig(p.server))
	base := &ctls.Config{RootCAs: p.ca.Pool()}
	tr := tlstransport.New(tlstransport.WithConfig(base))
	base.RootCAs = nil
	base.InsecureSkipVerify = true
	require.NoError(t, roundTrip(t, tr, net.JoinHostPort("127.0.0.1", port)))
}

// stall listens on loopback and accepts connections without ever answering
// the ClientHello. Each accepted connection is sent on the returned channel.
func stall(t *testing.T) (string, <-chan net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	accepted := make(chan net.Conn, 16)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(accepted)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	})
	t.Cleanup(func() {
		_ = l.Close()
		wg.Wait()
		for c := range accepted {
			_ = c.Close()
		}
	})
	return l.Addr().String(), accepted
}

func TestDialHonoursContext(t *testing.T) {
	t.Run("cancel during handshake", func(t *testing.T) {
		address, accepted := stall(t)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		result := make(chan error, 1)
		go func() {
			_, err := tlstransport.New(tlstransport.WithInsecureSkipVerify()).Dial(ctx, address)
			result <- err
		}()
		c := <-accepted // the TCP connect is done; the handshake waits
		defer c.Close()
		cancel()
		err := <-result
		require.ErrorIs(t, err, context.Canceled)
		assert.NotErrorIs(t, err, tlstransport.ErrHandshake)
	})
	t.Run("deadline", func(t *testing.T) {
		address, _ := stall(t)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := tlstransport.New(tlstransport.WithInsecureSkipVerify()).Dial(ctx, address)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
	t.Run("already cancelled", func(t *testing.T) {
		address, _ := stall(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := tlstransport.New().Dial(ctx, address)
		require.ErrorIs(t, err, context.Canceled)
	})
}

func TestConn(t *testing.T) {
	p := newPKI(t)
	tr := tlstransport.New(
		tlstransport.WithRootCAs(p.ca.Pool()),
		tlstransport.WithClientCertificate(p.client),
	)
	server := serverConfig(p.server)
	server.ClientAuth = ctls.RequireAndVerifyClientCert
	server.ClientCAs = p.ca.Pool()

	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, nil, err
		}
		defer l.Close()
		accepted := make(chan error, 1)
		go func() {
			raw, err := l.Accept()
			if err == nil {
				s := ctls.Server(raw, server)
				c2 = s
				if err = s.Handshake(); err != nil {
					_ = raw.Close()
				}
			}
			accepted <- err
		}()
		c, err := tr.Dial(context.Background(), l.Addr().String())
		if err := errors.Join(err, <-accepted); err != nil {
			if c != nil {
				_ = c.Close()
			}
			return nil, nil, nil, err
		}
		c1 = c.(net.Conn)
		stop = func() {
			_ = c1.Close()
			_ = c2.Close()
		}
		return c1, c2, stop, nil
	})
}
