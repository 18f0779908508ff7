package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/quic"
	tlstransport "github.com/pulsarconn/pulsarconn/adapters/tls"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// lineLog is an io.Writer that lets a test wait for a line.
type lineLog struct {
	mu    sync.Mutex
	text  strings.Builder
	ready chan struct{}
	once  sync.Once
	want  string
}

func newLineLog(want string) *lineLog { return &lineLog{ready: make(chan struct{}), want: want} }

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.text.Write(p)
	if strings.Contains(l.text.String(), l.want) {
		l.once.Do(func() { close(l.ready) })
	}
	return len(p), nil
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.text.String()
}

// field returns the fields of the line starting with prefix.
func (l *lineLog) field(t *testing.T, prefix string) []string {
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.HasPrefix(line, prefix) {
			return strings.Fields(strings.TrimPrefix(line, prefix))
		}
	}
	t.Fatalf("no %q line in:\n%s", prefix, l.String())
	return nil
}

// startServe runs "pulsarconn serve args..." until the test ends and
// returns its output once it serves.
func startServe(t *testing.T, args ...string) *lineLog {
	ctx, cancel := context.WithCancel(context.Background())
	out := newLineLog("serving ")
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"serve"}, args...), out, out) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		assert.Contains(t, out.String(), "stopped")
	})
	select {
	case <-out.ready:
	case err := <-done:
		t.Fatalf("serve ended early: %v\n%s", err, out.String())
	}
	return out
}

func TestServeClusterOverTCPTLSAndQUIC(t *testing.T) {
	out := startServe(t,
		"--listen", "pulsar://127.0.0.1:0", "--tls-listen", "pulsar+ssl://127.0.0.1:0",
		"--quic-listen", "127.0.0.1:0", "--brokers", "3", "--partitions", "orders=4")
	ctx := testenv.Context(t)
	service := out.field(t, "serving ")[0]
	b0 := out.field(t, "broker-0:")
	require.Len(t, b0, 3, "plain, TLS and QUIC endpoints")
	assert.Equal(t, service, b0[0])

	// The Client finds each topic's owner among the three brokers.
	client, err := pulsarconn.NewClient(service)
	require.NoError(t, err)
	defer client.Close(context.Background())
	n, err := client.PartitionedTopicMetadata(ctx, "orders")
	require.NoError(t, err)
	assert.Equal(t, 4, n)
	owners := map[string]bool{}
	for _, topic := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		b, err := client.LookupTopic(ctx, "persistent://public/default/"+topic)
		require.NoError(t, err)
		owners[b.BrokerURL()] = true
	}
	assert.Greater(t, len(owners), 1, "topics are spread over the brokers")

	// TLS, trusting the printed self-signed certificate.
	certPath := out.field(t, "certificate:")[0]
	tb, err := pulsarconn.Start(b0[1], pulsarconn.WithTransport(tlstransport.New(tlstransport.WithRootCAFile(certPath))))
	require.NoError(t, err)
	defer tb.Stop(context.Background())
	require.NoError(t, tb.WaitConnected(ctx))

	// QUIC, with the same certificate.
	pem, err := os.ReadFile(certPath)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(pem))
	qb, err := pulsarconn.Start("pulsar://"+strings.TrimPrefix(b0[2], "quic://"),
		pulsarconn.WithTransport(quic.New(&tls.Config{RootCAs: roots})))
	require.NoError(t, err)
	defer qb.Stop(context.Background())
	require.NoError(t, qb.WaitConnected(ctx))
}

func TestServeRequiresToken(t *testing.T) {
	out := startServe(t, "--listen", "pulsar://127.0.0.1:0", "--token", "letmein")
	service := out.field(t, "serving ")[0]
	ctx := testenv.Context(t)
	good, err := pulsarconn.Start(service, pulsarconn.WithAuthenticator(token("letmein")))
	require.NoError(t, err)
	defer good.Stop(context.Background())
	require.NoError(t, good.WaitConnected(ctx))

	bad, err := pulsarconn.Start(service)
	require.NoError(t, err)
	defer bad.Stop(context.Background())
	for {
		st, changed := bad.WatchState()
		if st == pulsarconn.StateClosed { // a refusal of the credentials is final
			break
		}
		<-changed
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, bad.WaitConnected(cancelled), pulsarconn.ErrAuthenticationError)
}

// connected dials service and returns its CONNECTED.
func connected(t *testing.T, service string) *pulsarpb.CommandConnected {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(service, "pulsar://"))
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.SetDeadline(time.Now().Add(10*time.Second)))
	b, err := frame.AppendCommand(nil, &pulsarpb.BaseCommand{
		Type:    pulsarpb.BaseCommand_CONNECT.Enum(),
		Connect: &pulsarpb.CommandConnect{ClientVersion: proto.String("test"), ProtocolVersion: proto.Int32(21)},
	})
	require.NoError(t, err)
	_, err = nc.Write(b)
	require.NoError(t, err)
	f, err := frame.NewReader(nc, 0).Next()
	require.NoError(t, err)
	require.Equal(t, pulsarpb.BaseCommand_CONNECTED, f.Command.GetType())
	return f.Command.GetConnected()
}

func TestServeMaxMessageSize(t *testing.T) {
	out := startServe(t, "--listen", "pulsar://127.0.0.1:0", "--max-message-size", "1MiB")
	assert.Equal(t, int32(1<<20), connected(t, out.field(t, "serving ")[0]).GetMaxMessageSize())

	out = startServe(t, "--listen", "pulsar://127.0.0.1:0")
	assert.Equal(t, int32(5<<20), connected(t, out.field(t, "serving ")[0]).GetMaxMessageSize(), "the default, a broker's")
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int{"1048576": 1 << 20, "1MiB": 1 << 20, "1m": 1 << 20, "5 MB": 5 << 20, "64K": 64 << 10, "100B": 100, "1GiB": 1 << 30} {
		n, err := parseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, n, in)
	}
	for _, in := range []string{"", "0", "-1", "1.5M", "MiB", "2G", "1T"} {
		_, err := parseSize(in)
		assert.Error(t, err, in)
	}
}

func TestServeVerboseLogsFrames(t *testing.T) {
	out := startServe(t, "--listen", "pulsar://127.0.0.1:0", "--verbose")
	service := out.field(t, "serving ")[0]
	var buf strings.Builder
	require.NoError(t, run(testenv.Context(t), []string{"lookup", "--url", service, "orders"}, &buf, &buf))
	log := out.String()
	assert.Contains(t, log, "conn 1 in CONNECT\n")
	assert.Contains(t, log, "conn 1 out CONNECTED\n")
	assert.Regexp(t, `conn 1 in LOOKUP request_id=\d+\n`, log)
	assert.Regexp(t, `conn 1 out LOOKUP_RESPONSE request_id=\d+\n`, log)
}

func TestFrameLine(t *testing.T) {
	cmd := &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_MESSAGE.Enum(),
		Message: &pulsarpb.CommandMessage{
			ConsumerId: proto.Uint64(3),
			MessageId:  &pulsarpb.MessageIdData{LedgerId: proto.Uint64(1), EntryId: proto.Uint64(9)},
		},
	}
	r := pulsartest.FrameRecord{Conn: 2, Dir: pulsartest.Out, Type: cmd.GetType(), Command: cmd, Payload: true}
	assert.Equal(t, "conn 2 out MESSAGE consumer_id=3 message_id=1:9 payload", frameLine(r))
	ack := &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_ACK.Enum(),
		Ack: &pulsarpb.CommandAck{
			ConsumerId: proto.Uint64(3),
			AckType:    pulsarpb.CommandAck_Individual.Enum(),
			MessageId: []*pulsarpb.MessageIdData{
				{LedgerId: proto.Uint64(1), EntryId: proto.Uint64(1)},
				{LedgerId: proto.Uint64(1), EntryId: proto.Uint64(2), BatchIndex: proto.Int32(0)},
			},
		},
	}
	r = pulsartest.FrameRecord{Conn: 2, Dir: pulsartest.In, Type: ack.GetType(), Command: ack}
	assert.Equal(t, "conn 2 in ACK consumer_id=3 message_id=1:1,1:2[0]", frameLine(r))
	assert.Equal(t, "conn 5 out (raw bytes)", frameLine(pulsartest.FrameRecord{Conn: 5, Dir: pulsartest.Out}))
}

func TestServeUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--brokers", "0"},
		{"serve", "--listen", ""},
		{"serve", "--partitions", "t"},
		{"serve", "--partitions", "t=0"},
		{"serve", "--listen", "http://127.0.0.1:0"},
		{"serve", "--cert", "x.pem"},
		{"serve", "extra"},
		{"serve", "--max-message-size", "0"},
		{"serve", "--max-message-size", "lots"},
		{"serve", "--max-message-size", "3GiB"},
	} {
		err := run(context.Background(), args, &strings.Builder{}, &strings.Builder{})
		assert.ErrorIs(t, err, errUsage, strings.Join(args, " "))
	}
}

// token is a fixed-token Authenticator.
type token string

func (token) Name() string                                        { return "token" }
func (s token) Initial(context.Context) ([]byte, error)           { return []byte(s), nil }
func (s token) Challenge(context.Context, []byte) ([]byte, error) { return []byte(s), nil }

func TestServeAdmin(t *testing.T) {
	out := startServe(t, "--listen", "pulsar://127.0.0.1:0", "--brokers", "2", "--admin", "127.0.0.1:0")
	admin := out.field(t, "admin:")[0]
	service := out.field(t, "serving ")[0]
	call := func(method, path, body string) (int, string) {
		req, err := http.NewRequestWithContext(testenv.Context(t), method, admin+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, body := call("GET", "/admin/v2/brokers/health", "")
	assert.Equal(t, 200, code)
	assert.Equal(t, "ok", body)
	code, _ = call("PUT", "/admin/v2/persistent/public/default/orders/partitions", "4")
	assert.Equal(t, 204, code)

	// The binary protocol sees the topic the admin API created, and the
	// HTTP lookup names the broker that owns it.
	client, err := pulsarconn.NewClient(service)
	require.NoError(t, err)
	defer client.Close(context.Background())
	n, err := client.PartitionedTopicMetadata(testenv.Context(t), "orders")
	require.NoError(t, err)
	assert.Equal(t, 4, n)
	b, err := client.LookupTopic(testenv.Context(t), "persistent://public/default/orders-partition-1")
	require.NoError(t, err)
	code, body = call("GET", "/lookup/v2/topic/persistent/public/default/orders-partition-1", "")
	assert.Equal(t, 200, code)
	var lookup map[string]string
	require.NoError(t, json.Unmarshal([]byte(body), &lookup))
	assert.Equal(t, b.BrokerURL(), lookup["brokerUrl"])
	assert.Equal(t, admin, lookup["httpUrl"])
}

// serve --admin-tls serves the same HTTP side over HTTPS with the TLS
// listener's certificate; its lookups name the TLS broker URL and the
// HTTPS web service, as a broker's webServicePortTls does.
func TestServeAdminTLS(t *testing.T) {
	out := startServe(t, "--listen", "pulsar://127.0.0.1:0", "--tls-listen", "pulsar+ssl://127.0.0.1:0", "--admin-tls", "127.0.0.1:0")
	admin := out.field(t, "admin:")[0]
	require.True(t, strings.HasPrefix(admin, "https://"), admin)
	pem, err := os.ReadFile(out.field(t, "certificate:")[0])
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(pem))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	defer hc.CloseIdleConnections()
	get := func(path string) (int, string) {
		req, err := http.NewRequestWithContext(testenv.Context(t), "GET", admin+path, nil)
		require.NoError(t, err)
		resp, err := hc.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, body := get("/admin/v2/brokers/health")
	assert.Equal(t, 200, code)
	assert.Equal(t, "ok", body)
	code, body = get("/lookup/v2/topic/persistent/public/default/t")
	require.Equal(t, 200, code, body)
	var lookup map[string]string
	require.NoError(t, json.Unmarshal([]byte(body), &lookup))
	assert.Equal(t, admin, lookup["httpUrlTls"])
	assert.True(t, strings.HasPrefix(lookup["brokerUrlTls"], "pulsar+ssl://127.0.0.1:"), lookup["brokerUrlTls"])

}

// serve removes the directory of the certificate it generated when it
// stops.
func TestServeRemovesItsCertificateDirectory(t *testing.T) {
	ctx, cancel := context.WithCancel(testenv.Context(t))
	out := newLineLog("serving ")
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--listen", "", "--tls-listen", "pulsar+ssl://127.0.0.1:0"}, out, out)
	}()
	select {
	case <-out.ready:
	case err := <-done:
		t.Fatalf("serve ended early: %v\n%s", err, out.String())
	}
	cert := out.field(t, "certificate:")[0]
	_, err := os.Stat(cert)
	require.NoError(t, err)
	cancel()
	require.NoError(t, <-done)
	_, err = os.Stat(filepath.Dir(cert))
	assert.ErrorIs(t, err, os.ErrNotExist)
}
