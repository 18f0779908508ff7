package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/quic"
	"github.com/pulsarconn/pulsarconn/adapters/tcp"
)

const bridgeAbout = `
Accepts QUIC connections speaking the Pulsar binary protocol on one stream
(adapters/quic, ALPN "pulsar-binary/1") on the UDP address of --quic-listen
and forwards each one to the broker of --to over TCP, copying bytes both
ways until either side closes; it prints one line per connection opened and
closed and runs until interrupted. Without --cert and --key it makes a
self-signed certificate at start and prints its SHA-256 fingerprint, for
clients to pin. See docs/quic.md.`

// bridgeFlags defines the flags of "pulsarconn bridge", which accepts
// Pulsar connections over QUIC (adapters/quic) and forwards each one's
// bytes to a broker over TCP, until ctx ends.
func bridgeFlags(fs *flag.FlagSet) runFunc {
	listen := fs.String("quic-listen", "", "UDP `ADDR` (HOST:PORT) to accept QUIC connections on, e.g. 127.0.0.1:6652 (required)")
	to := fs.String("to", "", "`URL` of the broker to forward to, pulsar://HOST:PORT (required)")
	certFile := fs.String("cert", "", "PEM `FILE` of the certificate chain to present (default: a self-signed certificate made at start)")
	keyFile := fs.String("key", "", "PEM `FILE` of the private key of --cert")
	return func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
		return bridge(ctx, *listen, *to, *certFile, *keyFile, stdout)
	}
}

// bridge runs "pulsarconn bridge".
func bridge(ctx context.Context, listen, to, certFile, keyFile string, stdout io.Writer) error {
	switch {
	case listen == "" || to == "":
		return usagef("bridge needs --quic-listen and --to")
	case (certFile == "") != (keyFile == ""):
		return usagef("bridge needs both --cert and --key, or neither")
	}
	target, err := pulsarconn.ParseURL(to)
	if err != nil {
		return err
	}
	if target.TLS {
		return fmt.Errorf("bridge: --to %s: only pulsar:// (TCP) brokers are supported", to)
	}

	log := &lineWriter{w: stdout}
	var cert tls.Certificate
	if certFile != "" {
		if cert, err = tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			return fmt.Errorf("bridge: %w", err)
		}
		log.printf("bridge: certificate %s, SHA-256 fingerprint %s", certFile, fingerprint(cert.Certificate[0]))
	} else {
		hosts := certificateHosts(listen)
		if cert, err = selfSignedCertificate(hosts, time.Now()); err != nil {
			return fmt.Errorf("bridge: %w", err)
		}
		log.printf("bridge: self-signed certificate for %s, SHA-256 fingerprint %s",
			strings.Join(hosts, ", "), fingerprint(cert.Certificate[0]))
	}

	l, err := quic.Listen(listen, &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	return runBridge(ctx, l, target.HostPort, tcpDialer(tcp.New()), log)
}

// tcpDialer adapts the TCP transport to the bridge's dial function.
func tcpDialer(t *tcp.Transport) func(ctx context.Context, address string) (net.Conn, error) {
	return func(ctx context.Context, address string) (net.Conn, error) {
		c, err := t.Dial(ctx, address)
		if err != nil {
			return nil, err
		}
		nc, ok := c.(net.Conn)
		if !ok {
			_ = c.Close()
			return nil, fmt.Errorf("bridge: the TCP transport returned a %T, not a net.Conn", c)
		}
		return nc, nil
	}
}

// bridgeConnectTimeout bounds each dial of the broker, as the Broker's own
// connect timeout does.
const bridgeConnectTimeout = 10 * time.Second

// runBridge accepts connections on l (a QUIC listener, though any listener
// works) until ctx ends or l fails, and forwards each one to target with
// dial. It writes one line to log per connection opened and closed. When ctx
// ends it closes l and every forwarded connection, waits for its
// goroutines, and returns nil; if l fails first, it returns the error.
func runBridge(ctx context.Context, l net.Listener, target string, dial func(ctx context.Context, address string) (net.Conn, error), log io.Writer) error {
	lw, ok := log.(*lineWriter)
	if !ok {
		lw = &lineWriter{w: log}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopListening := context.AfterFunc(ctx, func() { _ = l.Close() })
	defer stopListening()

	lw.printf("bridge: listening on %s %s (ALPN %s), forwarding to %s", l.Addr().Network(), l.Addr(), quic.ALPN, target)
	var (
		wg  sync.WaitGroup
		ids atomic.Uint64
		err error
	)
	for {
		c, aerr := l.Accept()
		if aerr != nil {
			if ctx.Err() == nil {
				err = fmt.Errorf("bridge: accept: %w", aerr)
			}
			break
		}
		id := ids.Add(1)
		wg.Go(func() { forward(ctx, id, c, target, dial, lw) })
	}
	cancel() // ends the forwarded connections
	_ = l.Close()
	wg.Wait()
	lw.printf("bridge: stopped")
	return err
}

// forward copies bytes both ways between client and a new connection to
// target until either side closes or ctx ends, then closes both.
func forward(ctx context.Context, id uint64, client net.Conn, target string, dial func(context.Context, string) (net.Conn, error), log *lineWriter) {
	from := client.RemoteAddr()
	dctx, cancel := context.WithTimeout(ctx, bridgeConnectTimeout)
	broker, err := dial(dctx, target)
	cancel()
	if err != nil {
		_ = client.Close()
		log.printf("bridge: #%d from %s failed: %v", id, from, err)
		return
	}
	log.printf("bridge: #%d opened %s -> %s", id, from, broker.RemoteAddr())

	closeBoth := func() {
		_ = client.Close()
		_ = broker.Close()
	}
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()

	var up, down int64
	done := make(chan struct{}, 2)
	go func() {
		up, _ = io.Copy(broker, client)
		done <- struct{}{}
	}()
	go func() {
		down, _ = io.Copy(client, broker)
		done <- struct{}{}
	}()
	<-done
	closeBoth()
	<-done
	log.printf("bridge: #%d closed %s (%d bytes to the broker, %d bytes from it)", id, from, up, down)
}

// lineWriter writes whole lines to w, one writer at a time: the bridge's
// connections log concurrently.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (lw *lineWriter) printf(format string, args ...any) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	fmt.Fprintf(lw.w, format+"\n", args...)
}

// Write writes p as is, so that a lineWriter is an io.Writer.
func (lw *lineWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.Write(p)
}

// certificateHosts are the names a self-signed certificate is made for:
// the loopback names, and the host of the listen address when it is a
// specific one.
func certificateHosts(listenAddr string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	host, _, err := net.SplitHostPort(listenAddr)
	if err != nil || host == "" {
		return hosts
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return hosts
	}
	for _, h := range hosts {
		if h == host {
			return hosts
		}
	}
	return append(hosts, host)
}

// selfSignedCertificate makes an ECDSA P-256 certificate for hosts (names
// and IP addresses), valid for a year from now.
func selfSignedCertificate(hosts []string, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "pulsarconn bridge"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so that clients can trust it as its own root
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// fingerprint is the SHA-256 of a DER certificate, as upper-case hex pairs
// joined by colons (as openssl x509 -fingerprint -sha256 prints it).
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}
