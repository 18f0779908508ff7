package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/quic"
	"github.com/pulsarconn/pulsarconn/adapters/tcp"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// logLines collects what the bridge writes and lets a test wait for a line.
type logLines struct {
	mu      sync.Mutex
	lines   []string
	partial string
	changed chan struct{} // closed and replaced at every new line
}

func newLogLines() *logLines { return &logLines{changed: make(chan struct{})} }

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial += string(p)
	for {
		i := strings.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, l.partial[:i])
		l.partial = l.partial[i+1:]
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return len(p), nil
}

// waitMatch waits for a line matching re and returns its submatches.
func (l *logLines) waitMatch(ctx context.Context, t *testing.T, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	for {
		l.mu.Lock()
		for _, line := range l.lines {
			if m := rx.FindStringSubmatch(line); m != nil {
				l.mu.Unlock()
				return m
			}
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("no log line matches %q; got:\n%s", re, l.String())
		}
	}
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// pinnedTLSConfig is a client TLS configuration that trusts exactly the
// certificate whose fingerprint is fp, whatever its names and issuer: how a
// client trusts a bridge's self-signed certificate.
func pinnedTLSConfig(fp string) *tls.Config {
	return &tls.Config{
		// Verification is not skipped: VerifyPeerCertificate replaces it.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
			if len(rawCerts) > 0 && fingerprint(rawCerts[0]) == fp {
				return nil
			}
			return errors.New("certificate does not match the pinned fingerprint")
		},
	}
}

// receipts collects a producer's SEND_RECEIPTs.
type receipts chan uint64

func (r receipts) HandlePush(p pulsarconn.Push) {
	if p.Kind == pulsarconn.PushReceipt {
		r <- p.Command.GetSendReceipt().GetSequenceId()
	}
}

// A Broker over QUIC -> the bridge -> TCP -> pulsartest: the handshake,
// discovery and a producer's receipts all cross the bridge.
func TestBridgeForwardsBrokerOverQUIC(t *testing.T) {
	srv := pulsartest.NewTCP(t)
	ctx := testenv.Context(t)

	cert, err := selfSignedCertificate([]string{"127.0.0.1"}, time.Now())
	require.NoError(t, err)
	l, err := quic.Listen("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	require.NoError(t, err)
	target := strings.TrimPrefix(srv.URL(), "pulsar://")
	log := newLogLines()
	bctx, stopBridge := context.WithCancel(ctx)
	bridged := make(chan error, 1)
	go func() { bridged <- runBridge(bctx, l, target, tcpDialer(tcp.New()), log) }()
	waitBridge := sync.OnceValue(func() error { return <-bridged })
	t.Cleanup(func() {
		stopBridge()
		waitBridge()
	})

	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	b, err := pulsarconn.Start("pulsar://"+l.Addr().String(),
		pulsarconn.WithTransport(quic.New(&tls.Config{RootCAs: roots})))
	require.NoError(t, err)
	require.NoError(t, b.WaitConnected(ctx))

	const topic = "persistent://public/default/bridged"
	res, err := b.LookupTopic(ctx, topic, false)
	require.NoError(t, err)
	assert.Equal(t, srv.URL(), res.BrokerURL, "the broker behind the bridge answers")

	got := make(receipts, 10)
	producerID := b.NewProducerID()
	_, err = b.RegisterProducer(ctx, producerID, got)
	require.NoError(t, err)
	resp, err := b.Request(ctx, &pulsarpb.BaseCommand{
		Type:     pulsarpb.BaseCommand_PRODUCER.Enum(),
		Producer: &pulsarpb.CommandProducer{Topic: proto.String(topic), ProducerId: proto.Uint64(producerID)},
	})
	require.NoError(t, err)
	name := resp.GetProducerSuccess().GetProducerName()
	const n = 5
	for seq := range uint64(n) {
		msg, err := frame.AppendMessage(nil,
			&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEND.Enum(), Send: &pulsarpb.CommandSend{
				ProducerId: proto.Uint64(producerID), SequenceId: proto.Uint64(seq)}},
			&pulsarpb.MessageMetadata{ProducerName: proto.String(name), SequenceId: proto.Uint64(seq), PublishTime: proto.Uint64(1)},
			fmt.Appendf(nil, "message %d", seq))
		require.NoError(t, err)
		require.NoError(t, b.PublishMessage(ctx, msg))
	}
	for seq := range uint64(n) {
		select {
		case s := <-got:
			assert.Equal(t, seq, s, "receipts in order")
		case <-ctx.Done():
			t.Fatalf("receipt %d never came", seq)
		}
	}
	require.NoError(t, srv.WaitMessages(ctx, topic, n))
	assert.Equal(t, "message 4", string(srv.Messages(topic)[4]))

	require.NoError(t, b.Stop(ctx))
	log.waitMatch(ctx, t, `^bridge: #1 closed 127\.0\.0\.1:\d+ \(\d+ bytes to the broker, \d+ bytes from it\)$`)
	require.NoError(t, srv.WaitConns(ctx, 0), "the bridge closed its TCP connection")

	stopBridge()
	require.NoError(t, waitBridge())
	lines := log.String()
	assert.Regexp(t, `(?m)^bridge: listening on udp 127\.0\.0\.1:\d+ \(ALPN pulsar-binary/1\), forwarding to `+regexp.QuoteMeta(target)+`$`, lines)
	assert.Regexp(t, `(?m)^bridge: #1 opened 127\.0\.0\.1:\d+ -> `+regexp.QuoteMeta(target)+`$`, lines)
	assert.Regexp(t, `(?m)^bridge: stopped$`, lines)
}

// The command itself: a self-signed certificate whose fingerprint it
// prints, which a client pins.
func TestBridgeCommand(t *testing.T) {
	srv := pulsartest.NewTCP(t)
	srv.SetPartitions("persistent://public/default/p", 2)
	ctx := testenv.Context(t)

	log := newLogLines()
	bctx, stopBridge := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() {
		ran <- run(bctx, []string{"bridge", "--quic-listen", "127.0.0.1:0", "--to", srv.URL()}, log, log)
	}()
	waitRun := sync.OnceValue(func() error { return <-ran })
	t.Cleanup(func() {
		stopBridge()
		waitRun()
	})
	fp := log.waitMatch(ctx, t, `^bridge: self-signed certificate for localhost, 127\.0\.0\.1, ::1, SHA-256 fingerprint ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})$`)[1]
	addr := log.waitMatch(ctx, t, `^bridge: listening on udp (\S+) `)[1]

	b, err := pulsarconn.Start("pulsar://"+addr, pulsarconn.WithTransport(quic.New(pinnedTLSConfig(fp))))
	require.NoError(t, err)
	require.NoError(t, b.WaitConnected(ctx))
	n, err := b.PartitionedTopicMetadata(ctx, "persistent://public/default/p")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	require.NoError(t, b.Stop(ctx))
	log.waitMatch(ctx, t, `^bridge: #1 closed `)

	// A client that pins another certificate is refused.
	_, err = quic.New(pinnedTLSConfig(strings.Repeat("00:", 31)+"00")).Dial(ctx, addr)
	assert.ErrorContains(t, err, "pinned fingerprint")

	stopBridge()
	require.NoError(t, waitRun())
}

// A connection whose broker cannot be reached is closed, and logged.
func TestBridgeDialFailure(t *testing.T) {
	ctx := testenv.Context(t)
	cert, err := selfSignedCertificate([]string{"127.0.0.1"}, time.Now())
	require.NoError(t, err)
	l, err := quic.Listen("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	require.NoError(t, err)
	refused := errors.New("broker unreachable")
	log := newLogLines()
	bctx, stopBridge := context.WithCancel(ctx)
	bridged := make(chan error, 1)
	go func() {
		bridged <- runBridge(bctx, l, "broker:6650", func(context.Context, string) (net.Conn, error) { return nil, refused }, log)
	}()
	waitBridge := sync.OnceValue(func() error { return <-bridged })
	t.Cleanup(func() {
		stopBridge()
		waitBridge()
	})

	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	c, err := quic.New(&tls.Config{RootCAs: roots}).DialConn(ctx, l.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("CONNECT"))
	require.NoError(t, err)
	_, err = c.Read(make([]byte, 1))
	assert.Equal(t, io.EOF, err, "the bridge closed the connection")
	log.waitMatch(ctx, t, `^bridge: #1 from 127\.0\.0\.1:\d+ failed: broker unreachable$`)

	stopBridge()
	require.NoError(t, waitBridge())
}

// The listener failing, rather than the context ending, is an error.
func TestBridgeListenerFailure(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, l.Close())
	err = runBridge(testenv.Context(t), l, "broker:6650", tcpDialer(tcp.New()), io.Discard)
	assert.ErrorIs(t, err, net.ErrClosed)
}

func TestBridgeUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bridge"},
		{"bridge", "--quic-listen", "127.0.0.1:0"},
		{"bridge", "--to", "pulsar://localhost:6650"},
		{"bridge", "--quic-listen", "127.0.0.1:0", "--to", "pulsar://localhost:6650", "--cert", "c.pem"},
		{"bridge", "--quic-listen", "127.0.0.1:0", "--to", "pulsar://localhost:6650", "extra"},
		{"bridge", "--bogus"},
	} {
		var out strings.Builder
		err := run(context.Background(), args, &out, &out)
		assert.ErrorIs(t, err, errUsage, strings.Join(args, " "))
	}
	var out strings.Builder
	err := run(context.Background(), []string{"bridge", "--quic-listen", "127.0.0.1:0", "--to", "http://x"}, &out, &out)
	assert.ErrorIs(t, err, pulsarconn.ErrInvalidURL)
	err = run(context.Background(), []string{"bridge", "--quic-listen", "127.0.0.1:0", "--to", "pulsar+ssl://x"}, &out, &out)
	assert.ErrorContains(t, err, "only pulsar://")
	err = run(context.Background(), []string{"bridge", "--quic-listen", "127.0.0.1:0", "--to", "pulsar://x", "--cert", "missing.pem", "--key", "missing.key"}, &out, &out)
	assert.ErrorContains(t, err, "missing.pem")
}

func TestCertificateHostsAndFingerprint(t *testing.T) {
	for addr, want := range map[string][]string{
		"127.0.0.1:0":         {"localhost", "127.0.0.1", "::1"},
		":6652":               {"localhost", "127.0.0.1", "::1"},
		"0.0.0.0:6652":        {"localhost", "127.0.0.1", "::1"},
		"bridge.example:6652": {"localhost", "127.0.0.1", "::1", "bridge.example"},
		"[2001:db8::1]:6652":  {"localhost", "127.0.0.1", "::1", "2001:db8::1"},
		"missing-port":        {"localhost", "127.0.0.1", "::1"},
	} {
		assert.Equal(t, want, certificateHosts(addr), addr)
	}

	cert, err := selfSignedCertificate([]string{"bridge.example", "192.0.2.1"}, time.Now())
	require.NoError(t, err)
	assert.Equal(t, []string{"bridge.example"}, cert.Leaf.DNSNames)
	require.Len(t, cert.Leaf.IPAddresses, 1)
	assert.Equal(t, "192.0.2.1", cert.Leaf.IPAddresses[0].String())
	require.NoError(t, cert.Leaf.VerifyHostname("bridge.example"))

	assert.Equal(t, "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55",
		fingerprint(nil), "SHA-256 of nothing")
}
