package main

import (
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// lookup follows the cluster's Redirect answers to the topic's owner and
// prints each hop.
func TestLookupFollowsRedirects(t *testing.T) {
	cluster := pulsartest.StartCluster(t, 3)
	topic := "persistent://public/default/redirected"
	cluster.Assign(topic, 2)
	first, owner := cluster.Broker(0).URL(), cluster.Broker(2).URL()
	require.Equal(t, first, cluster.URL())

	code, out, errOut := runMain(t, "lookup", topic, "--url", cluster.URL())
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "lookup "+topic+": redirect from "+first+" to "+owner+"\n"+
		"lookup "+topic+": connect to "+owner+"\n", out)
}

// lookup and partitions over TLS, trusting a CA given by --tls-ca (the
// certificate serve generates is its own CA), with a token from
// --token-file.
func TestLookupAndPartitionsWithTLSCAAndTokenFile(t *testing.T) {
	tok := tempFile(t, "token", []byte("letmein\n"))
	srv := startServe(t, "--listen", "", "--tls-listen", "pulsar+ssl://127.0.0.1:0", "--token-file", tok, "--partitions", "orders=3")
	service := srv.field(t, "serving ")[0]
	tlsURL := srv.field(t, "broker-0:")[0]
	require.True(t, strings.HasPrefix(tlsURL, "pulsar+ssl://"), tlsURL)
	ca := srv.field(t, "certificate:")[0]

	code, out, errOut := runMain(t, "lookup", "--url", tlsURL, "--tls-ca", ca, "--token-file", tok, "orders-partition-0")
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "lookup orders-partition-0: connect to "+tlsURL+"\n", out)
	code, out, errOut = runMain(t, "partitions", "orders", "--url", tlsURL, "--tls-ca", ca, "--token-file", tok)
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "partitions orders: 3\n", out)
	assert.NotEqual(t, service, tlsURL)

	// Without the CA, the system's roots do not know serve's certificate.
	code, _, errOut = runMain(t, "lookup", "--url", tlsURL, "--token-file", tok, "--timeout", "2s", "t")
	assert.Equal(t, 1, code)
	assert.Contains(t, lastLine(errOut), "certificate signed by unknown authority")
	// Without the token, the broker refuses the connection.
	code, _, errOut = runMain(t, "lookup", "--url", tlsURL, "--tls-ca", ca, "t")
	assert.Equal(t, 1, code)
	assert.Contains(t, lastLine(errOut), "uthentication")

	// Files that cannot be used fail at once.
	code, _, errOut = runMain(t, "lookup", "--url", tlsURL, "--tls-ca", filepath.Join(t.TempDir(), "missing.pem"), "t")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "--tls-ca: open ")
	code, _, errOut = runMain(t, "lookup", "--url", tlsURL, "--tls-ca", tok, "t")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "holds no PEM certificate")
	code, _, errOut = runMain(t, "lookup", "--url", tlsURL, "--token-file", filepath.Join(t.TempDir(), "missing"), "t")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "--token-file: open ")
}

// While the broker cannot be reached, each failed attempt is a line on
// stderr; at the timeout the error names the URL and the last cause.
func TestLookupShowsProgressAndGivesUp(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "pulsar://" + l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now

	code, out, errOut := runMain(t, "partitions", "t", "--url", url, "--timeout", "700ms")
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
	require.GreaterOrEqual(t, len(lines), 3, errOut)
	assert.True(t, strings.HasPrefix(lines[0], "pulsarconn: "+url+": connection attempt 1 failed ("), lines[0])
	assert.Contains(t, lines[0], "failed (dial tcp "+l.Addr().String()+": connect: connection refused)")
	assert.Contains(t, lines[0], "retrying for up to 700ms")
	assert.True(t, strings.HasPrefix(lines[1], "pulsarconn: "+url+": connection attempt 2 failed ("), lines[1])
	last := lines[len(lines)-1]
	assert.Regexp(t, `^pulsarconn: gave up on `+url+` after 700ms and \d+ failed connection attempt\(s\); last cause: .*connection refused`, last)
	assert.NotContains(t, last, "pulsarconn: pulsarconn:")
}

// Through a proxy, lookup names the owner and the proxy it goes through.
func TestLookupThroughProxy(t *testing.T) {
	cluster := pulsartest.StartCluster(t, 2, pulsartest.WithProxy())
	topic := "persistent://public/default/proxied"
	cluster.Assign(topic, 1)
	code, out, errOut := runMain(t, "lookup", topic, "--url", cluster.URL())
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "lookup "+topic+": connect to "+cluster.Broker(1).URL()+" through the proxy "+cluster.URL()+"\n", out)
}

// dropFirst is a listener that closes the first connection it accepts.
type dropFirst struct {
	net.Listener
	dropped atomic.Bool
}

func (l *dropFirst) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || !l.dropped.CompareAndSwap(false, true) {
			return c, err
		}
		_ = c.Close()
	}
}

// A failed attempt is told, and so is the connection that follows it.
func TestLookupTellsFailedAttemptThenConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "pulsar://" + l.Addr().String()
	srv := pulsartest.NewServer(pulsartest.WithAdvertisedURL(url))
	defer srv.Close()
	go srv.Serve(&dropFirst{Listener: l})

	code, out, errOut := runMain(t, "lookup", "t", "--url", url)
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "lookup t: connect to "+url+"\n", out)
	lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
	require.Len(t, lines, 2, errOut)
	assert.True(t, strings.HasPrefix(lines[0], "pulsarconn: "+url+": connection attempt 1 failed ("), lines[0])
	assert.Equal(t, "pulsarconn: "+url+": connected after 1 failed attempt(s)", lines[1])
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	return lines[len(lines)-1]
}
