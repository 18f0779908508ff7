package main

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pulsarconn/pulsarconn/adapters/quic"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// serveConfig is what "pulsarconn serve" was asked for.
type serveConfig struct {
	listen, tlsListen, quicListen string
	certFile, keyFile             string
	brokers                       int
	auth                          authFlags
	advertised                    string
	partitions                    map[string]int
	proxy                         bool
	maxMessageSize                int       // --max-message-size; 0: pulsartest's default
	frameLog                      io.Writer // --verbose: stderr; nil: off
	admin, adminTLS               string
}

const serveAbout = `
Runs pulsartest's fake broker, or a cluster of --brokers brokers (and a
--proxy), on the listeners given, and prints where each member serves, the
path of the self-signed certificate it made (if any; removed at exit), and
"serving URL"; it runs until interrupted (Ctrl-C). With --brokers N each
topic is owned by one broker and lookups elsewhere redirect to it.
--verbose logs every frame. The authentication flags (--token,
--token-file, --token-secret-key, --token-public-key, --basic-auth-file,
--tls-trust-certs) turn authentication on; --super-user, --tenant-admin and
--grant turn authorization on. The token may also come from $` + tokenEnv + `.`

// serveFlags defines the flags of "pulsarconn serve", which runs the fake
// broker (pulsartest), or a cluster of them, on loopback, until ctx ends.
func serveFlags(fs *flag.FlagSet) runFunc {
	var cfg serveConfig
	var parts listFlag
	fs.StringVar(&cfg.listen, "listen", "pulsar://127.0.0.1:6650", "plain TCP listener at `URL` (pulsar://HOST:PORT; empty for none); with --brokers N, broker i takes PORT+i (port 0: any free port)")
	fs.StringVar(&cfg.tlsListen, "tls-listen", "", "TLS listener at `URL` (pulsar+ssl://HOST:PORT), with --cert/--key or a generated certificate")
	fs.StringVar(&cfg.quicListen, "quic-listen", "", "experimental QUIC listener at `ADDR` (HOST:PORT, UDP), with the same certificate")
	fs.StringVar(&cfg.certFile, "cert", "", "PEM `FILE` of the certificate chain for TLS and QUIC (default: a self-signed certificate, written to a printed path and removed at exit)")
	fs.StringVar(&cfg.keyFile, "key", "", "PEM `FILE` of the private key of --cert")
	fs.IntVar(&cfg.brokers, "brokers", 1, "`N` brokers: topics are spread over them and lookups redirect to the owner")
	fs.BoolVar(&cfg.proxy, "proxy", false, "put a proxy in front of the brokers (on the first port of each listener)")
	cfg.auth.register(fs)
	fs.StringVar(&cfg.advertised, "advertised-address", "", "`HOST` name the brokers advertise in lookups instead of the listeners' addresses (a broker's advertisedAddress; e.g. localhost, which a certificate names)")
	fs.Var(&parts, "partitions", "`TOPIC=N`: a partitioned topic of N partitions (repeatable)")
	maxSize := fs.String("max-message-size", "5MiB", "largest message the brokers accept and announce in CONNECTED: a `SIZE` in bytes, or with K, M or G: 1MiB, 1048576")
	verbose := fs.Bool("verbose", false, "log every frame read and sent to stderr: connection id (per broker), direction, command type, key ids")
	fs.StringVar(&cfg.admin, "admin", "", "HTTP listener at `ADDR` (HOST:PORT) for the admin REST API and HTTP lookup, e.g. 127.0.0.1:8080; empty for none")
	fs.StringVar(&cfg.adminTLS, "admin-tls", "", "HTTPS listener at `ADDR` (HOST:PORT) for the same, with the certificate of --tls-listen (and its client certificate check), e.g. 127.0.0.1:8443; empty for none")
	return func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
		return checkServe(ctx, cfg, parts, *maxSize, *verbose, stdout, stderr)
	}
}

// checkServe checks serve's flags and runs it.
func checkServe(ctx context.Context, cfg serveConfig, parts listFlag, maxSize string, verbose bool, stdout, stderr io.Writer) error {
	if cfg.brokers < 1 {
		return usagef("--brokers must be at least 1")
	}
	if cfg.listen == "" && cfg.tlsListen == "" && cfg.quicListen == "" {
		return usagef("serve needs --listen, --tls-listen or --quic-listen")
	}
	if (cfg.certFile == "") != (cfg.keyFile == "") {
		return usagef("--cert and --key go together")
	}
	if cfg.certFile != "" && cfg.tlsListen == "" && cfg.quicListen == "" && cfg.adminTLS == "" {
		return usagef("--cert needs --tls-listen, --quic-listen or --admin-tls")
	}
	n, err := parseSize(maxSize)
	if err != nil {
		return usagef("--max-message-size: %v", err)
	}
	cfg.maxMessageSize = n
	if verbose {
		cfg.frameLog = stderr
	}
	if cfg.auth.trustCerts != "" && cfg.tlsListen == "" {
		return usagef("--tls-trust-certs needs --tls-listen")
	}
	cfg.partitions = map[string]int{}
	for _, p := range parts {
		topic, n, ok := strings.Cut(p, "=")
		count, err := strconv.Atoi(n)
		if !ok || topic == "" || err != nil || count < 1 {
			return usagef("--partitions wants TOPIC=N with N >= 1, got %q", p)
		}
		cfg.partitions[topic] = count
	}
	return runServe(ctx, cfg, stdout)
}

// runServe starts the cluster, prints what it serves, and stops it when
// ctx ends.
func runServe(ctx context.Context, cfg serveConfig, out io.Writer) error {
	var tlsConfig *tls.Config
	if cfg.tlsListen != "" || cfg.quicListen != "" || cfg.adminTLS != "" {
		cert, path, err := serveCertificate(cfg)
		if err != nil {
			return err
		}
		if path != "" {
			defer os.RemoveAll(filepath.Dir(path))
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		pool, err := cfg.auth.clientCAs()
		if err != nil {
			return err
		}
		if pool != nil {
			// Ask for a client certificate, and verify one if given, as a
			// broker with tlsTrustCertsFilePath does: a client without
			// one still connects (and authenticates otherwise).
			tlsConfig.ClientCAs, tlsConfig.ClientAuth = pool, tls.VerifyClientCertIfGiven
		}
		if path != "" {
			fmt.Fprintf(out, "certificate: %s (self-signed, removed at exit; trust it, e.g. TLSTrustCertsFilePath)\n", path)
		}
	}
	opts, err := cfg.auth.options(os.Getenv)
	if err != nil {
		return err
	}
	if cfg.proxy {
		opts = append(opts, pulsartest.WithProxy())
	}
	if cfg.maxMessageSize > 0 {
		opts = append(opts, pulsartest.WithMaxMessageSize(cfg.maxMessageSize))
	}
	if cfg.frameLog != nil {
		opts = append(opts, pulsartest.WithFrameObserver(frameLogger(cfg.frameLog)))
	}
	for topic, n := range cfg.partitions {
		opts = append(opts, pulsartest.WithPartitionedTopic(topic, n))
	}
	// Members take consecutive ports: the proxy (if any) the first, then
	// the brokers, in order.
	served := map[string]pulsartest.Endpoint{}
	var names []string
	next := 0
	if cfg.proxy {
		next = 1
	}
	place := func(member string) (pulsartest.Endpoint, error) {
		i := 0
		if member != "proxy" {
			i = next
			next++
		}
		ep, err := listenMember(cfg, i, tlsConfig)
		if err == nil {
			served[member] = ep
			names = append(names, member)
		}
		return ep, err
	}
	cluster, err := pulsartest.ServeCluster(cfg.brokers, place, opts...)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	for _, name := range names {
		ep := served[name]
		line := name + ":"
		if cfg.listen != "" {
			line += " " + ep.URL
		}
		if ep.TLSURL != "" {
			line += " " + ep.TLSURL
		}
		if cfg.quicListen != "" {
			line += " quic://" + ep.Listeners[len(ep.Listeners)-1].Addr().String()
		}
		fmt.Fprintln(out, line)
	}
	// The HTTP side: the admin REST API and HTTP lookup, over HTTP and
	// HTTPS, as a broker's webServicePort and webServicePortTls.
	var adminServers []*http.Server
	var adminWG sync.WaitGroup
	stopAdmin := func() {
		for _, hs := range adminServers {
			_ = hs.Close()
		}
		adminWG.Wait()
	}
	for _, a := range []struct {
		addr   string
		scheme string
		tls    *tls.Config
	}{{cfg.admin, "http", nil}, {cfg.adminTLS, "https", tlsConfig}} {
		if a.addr == "" {
			continue
		}
		l, err := net.Listen("tcp", a.addr)
		if err != nil {
			stopAdmin()
			_ = cluster.Close()
			return fmt.Errorf("serve: admin: %w", err)
		}
		if a.tls != nil {
			l = tls.NewListener(l, a.tls)
		}
		hs := &http.Server{Handler: cluster.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}
		adminServers = append(adminServers, hs)
		adminWG.Add(1)
		go func() {
			defer adminWG.Done()
			_ = hs.Serve(l)
		}()
		fmt.Fprintf(out, "admin: %s://%s\n", a.scheme, l.Addr())
	}
	fmt.Fprintf(out, "serving %s (Ctrl-C stops)\n", cluster.URL())
	<-ctx.Done()
	stopAdmin()
	err = cluster.Close()
	fmt.Fprintln(out, "stopped")
	return err
}

// listenMember opens the listeners of member i: each kind on its base
// port plus i (or any free port when the base port is 0).
func listenMember(cfg serveConfig, i int, tlsConfig *tls.Config) (pulsartest.Endpoint, error) {
	var ep pulsartest.Endpoint
	fail := func(err error) (pulsartest.Endpoint, error) {
		for _, l := range ep.Listeners {
			l.Close()
		}
		return pulsartest.Endpoint{}, err
	}
	if cfg.listen != "" {
		addr, err := memberAddr(cfg.listen, i, false)
		if err != nil {
			return fail(err)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fail(err)
		}
		ep.Listeners = append(ep.Listeners, l)
		ep.URL = "pulsar://" + l.Addr().String()
	}
	if cfg.tlsListen != "" {
		addr, err := memberAddr(cfg.tlsListen, i, true)
		if err != nil {
			return fail(err)
		}
		l, err := tls.Listen("tcp", addr, tlsConfig)
		if err != nil {
			return fail(err)
		}
		ep.Listeners = append(ep.Listeners, l)
		ep.TLSURL = "pulsar+ssl://" + l.Addr().String()
	}
	if cfg.quicListen != "" {
		addr, err := offsetPort(cfg.quicListen, i)
		if err != nil {
			return fail(err)
		}
		l, err := quic.Listen(addr, tlsConfig)
		if err != nil {
			return fail(err)
		}
		ep.Listeners = append(ep.Listeners, l)
		if ep.URL == "" {
			ep.URL = "pulsar://" + l.Addr().String()
		}
	}
	if ep.URL == "" {
		ep.URL = strings.Replace(ep.TLSURL, "pulsar+ssl://", "pulsar://", 1)
	}
	if cfg.advertised != "" {
		ep.URL = advertise(ep.URL, cfg.advertised)
		ep.TLSURL = advertise(ep.TLSURL, cfg.advertised)
	}
	return ep, nil
}

// advertise replaces the host of a pulsar:// or pulsar+ssl:// URL.
func advertise(rawURL, host string) string {
	scheme, hostPort, ok := strings.Cut(rawURL, "://")
	if !ok {
		return rawURL
	}
	_, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return rawURL
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// memberAddr turns a listen URL (pulsar://HOST:PORT or
// pulsar+ssl://HOST:PORT; port 0 means any free port) into member i's
// host:port.
func memberAddr(rawURL string, i int, secure bool) (string, error) {
	scheme, hostPort := "pulsar://", strings.TrimPrefix(rawURL, "pulsar://")
	if secure {
		scheme, hostPort = "pulsar+ssl://", strings.TrimPrefix(rawURL, "pulsar+ssl://")
	}
	if hostPort == rawURL {
		return "", usagef("listen URL %q: want %sHOST:PORT", rawURL, scheme)
	}
	if _, _, err := net.SplitHostPort(hostPort); err != nil {
		port := "6650"
		if secure {
			port = "6651"
		}
		hostPort = net.JoinHostPort(hostPort, port)
	}
	return offsetPort(hostPort, i)
}

// offsetPort adds i to the port of host:port, unless the port is 0.
func offsetPort(hostPort string, i int) (string, error) {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return "", usagef("%v", err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p+i > 65535 {
		return "", usagef("bad port in %q", hostPort)
	}
	if p != 0 {
		p += i
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}

// serveCertificate loads --cert/--key, or makes a self-signed certificate
// and writes it to a file in a new temporary directory whose path it
// returns, so that clients can be told to trust it; the caller removes
// that directory.
func serveCertificate(cfg serveConfig) (tls.Certificate, string, error) {
	if cfg.certFile != "" || cfg.keyFile != "" {
		if cfg.certFile == "" || cfg.keyFile == "" {
			return tls.Certificate{}, "", usagef("--cert and --key go together")
		}
		cert, err := tls.LoadX509KeyPair(cfg.certFile, cfg.keyFile)
		return cert, "", err
	}
	cert, err := selfSignedCertificate(certificateHosts(hostOf(cfg)), time.Now())
	if err != nil {
		return tls.Certificate{}, "", err
	}
	dir, err := os.MkdirTemp("", "pulsarconn-serve-")
	if err != nil {
		return tls.Certificate{}, "", err
	}
	path := filepath.Join(dir, "cert.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	if err := os.WriteFile(path, pemBytes, 0o644); err != nil {
		_ = os.RemoveAll(dir)
		return tls.Certificate{}, "", err
	}
	return cert, path, nil
}

// hostOf is the address the certificate should name.
func hostOf(cfg serveConfig) string {
	if a, err := memberAddr(cfg.tlsListen, 0, true); err == nil {
		return a
	}
	if a, err := memberAddr(cfg.listen, 0, false); err == nil {
		return a
	}
	return cfg.quicListen
}
