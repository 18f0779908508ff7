package interop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// safety bounds every receive and every wait of a test, so that a fake
// that differs from a broker fails the test instead of hanging it. Tests
// never sleep to wait for something: they block on a receive, a receipt
// or one of pulsartest's Wait methods, bounded by this.
const safety = 15 * time.Second

// quiet bounds a receive that must NOT return a message: how long a test
// watches for a redelivery that should not happen. It is not a wait for
// something to happen, and success is the timeout.
const quiet = 300 * time.Millisecond

// bounded returns a context that ends after safety, or with the test.
func bounded(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	t.Cleanup(cancel)
	return ctx
}

// clientLogger is silent unless PULSAR_INTEROP_LOG is set (to "debug" for
// everything, to anything else for warnings and errors): the official
// client logs every connection and reconnection.
func clientLogger() log.Logger {
	v := os.Getenv("PULSAR_INTEROP_LOG")
	if v == "" {
		return log.DefaultNopLogger()
	}
	level := slog.LevelWarn
	if v == "debug" {
		level = slog.LevelDebug
	}
	return log.NewLoggerWithSlog(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
}

// newClient makes an official client for url, closed when the test ends.
// Each client gets its own metrics registry, so that tests do not share
// the process-wide one.
func newClient(t testing.TB, opts pulsar.ClientOptions) pulsar.Client {
	t.Helper()
	if opts.ConnectionTimeout == 0 {
		opts.ConnectionTimeout = 5 * time.Second
	}
	if opts.OperationTimeout == 0 {
		opts.OperationTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = clientLogger()
	}
	opts.MetricsRegisterer = prometheus.NewRegistry()
	c, err := pulsar.NewClient(opts)
	if err != nil {
		t.Fatalf("pulsar.NewClient(%s): %v", opts.URL, err)
	}
	t.Cleanup(c.Close)
	return c
}

// connect starts a pulsartest server on TCP loopback and an official
// client for it.
func connect(t testing.TB, opts ...pulsartest.Option) (*pulsartest.Server, pulsar.Client) {
	t.Helper()
	srv := pulsartest.NewTCP(t, opts...)
	return srv, newClient(t, pulsar.ClientOptions{URL: srv.URL()})
}

// topicName is a topic unique to the test, in the short form a user
// writes; the broker (and pulsartest) expand it to
// persistent://public/default/<name>.
func topicName(t testing.TB) string {
	return fmt.Sprintf("interop-%s-%d", sanitize(t.Name()), time.Now().UnixNano())
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			b[i] = '-'
		}
	}
	return string(b)
}

// fullName is the name a broker gives the short topic name.
func fullName(topic string) string { return "persistent://public/default/" + topic }

// payloads makes n distinct payloads "<prefix>-0" ... "<prefix>-(n-1)".
func payloads(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// sendAll sends each payload with Send, in order, and returns the ids the
// broker's receipts carried.
func sendAll(t testing.TB, p pulsar.Producer, msgs []string) []pulsar.MessageID {
	t.Helper()
	ids := make([]pulsar.MessageID, len(msgs))
	for i, m := range msgs {
		id, err := p.Send(bounded(t), &pulsar.ProducerMessage{Payload: []byte(m)})
		if err != nil {
			t.Fatalf("Send(%q): %v", m, err)
		}
		ids[i] = id
	}
	return ids
}

// received is a message as a test checks it.
type received struct {
	payload string
	id      pulsar.MessageID
	msg     pulsar.Message
}

// receiveN receives exactly n messages from c, each within safety.
func receiveN(t testing.TB, c pulsar.Consumer, n int) []received {
	t.Helper()
	out := make([]received, 0, n)
	for len(out) < n {
		ctx, cancel := context.WithTimeout(context.Background(), safety)
		m, err := c.Receive(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Receive after %d of %d messages: %v", len(out), n, err)
		}
		out = append(out, received{payload: string(m.Payload()), id: m.ID(), msg: m})
	}
	return out
}

// readN reads exactly n messages from r, each within safety.
func readN(t testing.TB, r pulsar.Reader, n int) []received {
	t.Helper()
	out := make([]received, 0, n)
	for len(out) < n {
		ctx, cancel := context.WithTimeout(context.Background(), safety)
		m, err := r.Next(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Next after %d of %d messages: %v", len(out), n, err)
		}
		out = append(out, received{payload: string(m.Payload()), id: m.ID(), msg: m})
	}
	return out
}

// expectNothing checks that c delivers no message within quiet: what
// was acknowledged must not come back.
func expectNothing(t testing.TB, c pulsar.Consumer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), quiet)
	defer cancel()
	if m, err := c.Receive(ctx); err == nil {
		t.Fatalf("unexpected message %q (id %v)", m.Payload(), m.ID())
	}
}

func payloadsOf(rs []received) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.payload
	}
	return out
}

// sameID reports whether two message ids name the same message.
func sameID(a, b pulsar.MessageID) bool {
	return a.LedgerID() == b.LedgerID() && a.EntryID() == b.EntryID() &&
		a.BatchIdx() == b.BatchIdx() && a.PartitionIdx() == b.PartitionIdx()
}

// before reports whether id a comes strictly before id b on one topic.
func before(a, b pulsar.MessageID) bool {
	if a.LedgerID() != b.LedgerID() {
		return a.LedgerID() < b.LedgerID()
	}
	if a.EntryID() != b.EntryID() {
		return a.EntryID() < b.EntryID()
	}
	return a.BatchIdx() < b.BatchIdx()
}

// waitReceived waits until the server has handled n commands of type
// typ, e.g. the ACKs a client sends in the background.
func waitReceived(t testing.TB, srv *pulsartest.Server, typ pulsarpb.BaseCommand_Type, n int) {
	t.Helper()
	if err := srv.WaitReceived(bounded(t), typ, n); err != nil {
		t.Fatalf("waiting for %d %v commands (have %d): %v", n, typ, srv.Received(typ), err)
	}
}

// tlsServer serves a pulsartest server on a TLS listener at 127.0.0.1,
// with a certificate made for this test, and returns it with the path of
// a PEM file holding the CA that issued it.
func tlsServer(t testing.TB, opts ...pulsartest.Option) (srv *pulsartest.Server, url, caFile string) {
	t.Helper()
	caPEM, cert := makeCerts(t)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url = "pulsar+ssl://" + l.Addr().String()
	tl := tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	// A broker with TLS advertises both of its URLs in LOOKUP answers; a
	// client on TLS takes brokerServiceUrlTls.
	opts = append([]pulsartest.Option{
		pulsartest.WithAdvertisedURL(url),
		pulsartest.WithAdvertisedTLSURL(url),
	}, opts...)
	srv = pulsartest.NewServer(opts...)
	if err := srv.Start(tl); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, url, caFile
}

// makeCerts makes a CA (returned as PEM) and a server certificate it
// signed for 127.0.0.1 and localhost, valid for an hour.
func makeCerts(t testing.TB) ([]byte, tls.Certificate) {
	t.Helper()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pulsarconn interop CA"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(err)
	ca, err := x509.ParseCertificate(caDER)
	must(err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	must(err)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return caPEM, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
