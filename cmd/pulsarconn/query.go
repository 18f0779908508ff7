package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pulsarconn/pulsarconn"
	tokenauth "github.com/pulsarconn/pulsarconn/adapters/auth/token"
	tlstransport "github.com/pulsarconn/pulsarconn/adapters/tls"
)

const lookupAbout = `
Asks the broker at --url which broker owns TOPIC, follows Redirect answers
to the owner (printing each hop), and prints the broker to connect to:

  lookup TOPIC: redirect from pulsar://A:6650 to pulsar://B:6650
  lookup TOPIC: connect to pulsar://B:6650

While the broker cannot be reached, a line on stderr tells each failed
attempt and its cause; after --timeout it gives up, naming the URL and the
last cause. With a pulsar+ssl:// URL, --tls-ca says which certificate
authority to trust (default: the system's); --token-file authenticates with
the token in that file (auth method "token").`

const partitionsAbout = `
Asks the broker at --url for TOPIC's partitioned-topic metadata and prints
its number of partitions ("partitions TOPIC: N"; 0 for a topic that is not
partitioned). Waiting, TLS and token flags as for lookup.`

// queryFlags defines the flags of lookup and partitions (name).
func queryFlags(name string) func(fs *flag.FlagSet) runFunc {
	return func(fs *flag.FlagSet) runFunc {
		url := fs.String("url", "pulsar://localhost:6650", "service `URL` of the cluster: pulsar://HOST:PORT or pulsar+ssl://HOST:PORT, several hosts comma-separated")
		timeout := fs.Duration("timeout", 10*time.Second, "give up after this `DURATION` (e.g. 500ms, 30s, 2m)")
		tlsCA := fs.String("tls-ca", "", "PEM `FILE` of the certificate authorities to trust for pulsar+ssl:// (default: the system's)")
		tokenFile := fs.String("token-file", "", "authenticate with the token in this `FILE` (auth method \"token\"; surrounding white space is not part of it)")
		return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			opts, err := clientOptions(*url, *tlsCA, *tokenFile)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctx, *timeout)
			defer cancel()
			return query(ctx, name, args[0], *url, *timeout, stdout, stderr, opts...)
		}
	}
}

// clientOptions are the Client options of the --tls-ca and --token-file
// flags, whose files are checked here rather than at the first
// connection attempt.
func clientOptions(url, tlsCA, tokenFile string) ([]pulsarconn.ClientOption, error) {
	var opts []pulsarconn.ClientOption
	if tlsCA != "" {
		if !strings.HasPrefix(url, "pulsar+ssl://") {
			return nil, usagef("--tls-ca needs a pulsar+ssl:// --url")
		}
		pool, err := readCertPool("--tls-ca", tlsCA)
		if err != nil {
			return nil, err
		}
		opts = append(opts, pulsarconn.WithTransport(tlstransport.New(tlstransport.WithRootCAs(pool))))
	}
	if tokenFile != "" {
		data, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		if strings.TrimSpace(string(data)) == "" {
			return nil, usagef("--token-file %s holds no token", tokenFile)
		}
		opts = append(opts, pulsarconn.WithAuthenticator(tokenauth.FromFile(tokenFile)))
	}
	return opts, nil
}

// query runs lookup or partitions (name) for topic with a Client of url.
func query(ctx context.Context, name, topic, url string, timeout time.Duration, stdout, stderr io.Writer, opts ...pulsarconn.ClientOption) error {
	p := &progress{stdout: stdout, stderr: stderr, timeout: timeout, failures: map[string]int{}}
	c, err := pulsarconn.NewClient(url, append(opts, pulsarconn.WithObserver(p))...)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	if name == "partitions" {
		n, err := c.PartitionedTopicMetadata(ctx, topic)
		if err != nil {
			return p.explain(ctx, err)
		}
		fmt.Fprintf(stdout, "partitions %s: %d\n", topic, n)
		return nil
	}
	b, err := c.LookupTopic(ctx, topic)
	if err != nil {
		return p.explain(ctx, err)
	}
	fmt.Fprintf(stdout, "lookup %s: connect to %s", topic, b.BrokerURL())
	if b.DialURL() != b.BrokerURL() {
		fmt.Fprintf(stdout, " through the proxy %s", b.DialURL())
	}
	fmt.Fprintln(stdout)
	return nil
}

// progress is the Observer of lookup and partitions: it prints each
// redirect to stdout and each failed connection attempt to stderr, and
// remembers the last failure for the error of a lookup that gave up.
type progress struct {
	stdout, stderr io.Writer
	timeout        time.Duration

	mu       sync.Mutex
	failures map[string]int // failed attempts by broker URL, since its last connection
	lastURL  string
	lastErr  error
}

// Observe implements pulsarconn.Observer.
func (p *progress) Observe(e pulsarconn.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e := e.(type) {
	case pulsarconn.LookupRedirected:
		fmt.Fprintf(p.stdout, "lookup %s: redirect from %s to %s\n", e.Topic, e.From, e.To)
	case pulsarconn.HandshakeFailed:
		p.failures[e.BrokerURL]++
		p.lastURL, p.lastErr = e.BrokerURL, e.Err
		fmt.Fprintf(p.stderr, "pulsarconn: %s: connection attempt %d failed (%s); retrying for up to %v\n",
			e.BrokerURL, p.failures[e.BrokerURL], causeText(e.Err), p.timeout)
	case pulsarconn.ConnectionOpened:
		if n := p.failures[e.BrokerURL]; n > 0 {
			fmt.Fprintf(p.stderr, "pulsarconn: %s: connected after %d failed attempt(s)\n", e.BrokerURL, n)
		}
		delete(p.failures, e.BrokerURL)
		if e.BrokerURL == p.lastURL {
			p.lastURL, p.lastErr = "", nil
		}
	}
}

// explain turns the error of a lookup that ran out of time while a broker
// could not be reached into one naming that broker and the last cause.
func (p *progress) explain(ctx context.Context, err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastErr == nil || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("gave up on %s after %v and %d failed connection attempt(s); last cause: %s",
		p.lastURL, p.timeout, p.failures[p.lastURL], causeText(p.lastErr))
}

// causeText is the cause of a failed connection attempt: the dial error
// itself when the dial failed (the layers above it repeat its address),
// else err's text without the library's "pulsarconn: " prefix.
func causeText(err error) string {
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" {
		return op.Error()
	}
	return strings.TrimPrefix(errorLine(err), "pulsarconn: ")
}
