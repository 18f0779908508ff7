// Command pulsarconn is the command-line tool of the pulsarconn library.
//
// Usage:
//
//	pulsarconn demo                                   run against an embedded in-memory fake broker
//	pulsarconn lookup     [--url URL] [--timeout D] TOPIC   look a topic up on a broker
//	pulsarconn partitions [--url URL] [--timeout D] TOPIC   read a topic's partition count
//	pulsarconn bridge --quic-listen ADDR --to pulsar://HOST:PORT [--cert FILE --key FILE]
//	                                                  forward Pulsar-over-QUIC connections to a TCP broker
//	pulsarconn serve [--listen pulsar://127.0.0.1:6650] [--tls-listen pulsar+ssl://HOST:PORT]
//	                 [--quic-listen HOST:PORT] [--cert FILE --key FILE] [--brokers N] [--proxy]
//	                 [--admin HOST:PORT] [--admin-tls HOST:PORT] [--advertised-address HOST]
//	                 [--max-message-size SIZE] [--verbose] [--partitions TOPIC=N]...
//	                 [--token-file FILE | --token-secret-key FILE | --token-public-key FILE ...]
//	                 [--basic-auth-file FILE] [--tls-trust-certs FILE] [--anonymous-role ROLE]
//	                 [--super-user ROLE]... [--tenant-admin T=ROLE]... [--grant NS=ROLE]...
//	                                                  run the fake broker (or a cluster) until Ctrl-C;
//	                                                  "serve -h" describes every flag
//	pulsarconn bench [--quick] [--duration D] [--json FILE] [--svg FILE] [--compare FILE]
//	                                                  measure raw loops, this library (and another client) on loopback
//
// demo needs no flags and no network: it starts pulsartest's fake broker on
// an in-memory network, connects, looks a topic up, reads its partition
// metadata, registers a producer and a consumer, publishes 1,000 messages
// and prints the receipts, the deliveries and the latency percentiles.
//
// bridge (experimental) accepts QUIC connections speaking the Pulsar binary
// protocol on one stream (adapters/quic, ALPN "pulsar-binary/1") on the UDP
// address ADDR and forwards each one to the broker over TCP, copying bytes
// both ways until either side closes; it prints one line per connection
// opened and closed and runs until interrupted. Without --cert and --key it
// makes a self-signed certificate at start and prints its SHA-256
// fingerprint, for clients to pin. See docs/quic.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "pulsarconn:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage: pulsarconn demo | lookup [--url URL] TOPIC | partitions [--url URL] TOPIC | bridge --quic-listen ADDR --to pulsar://HOST:PORT [--cert FILE --key FILE] | serve [--listen URL] [--tls-listen URL] [--admin ADDR] [--admin-tls ADDR] [flags: serve -h] | bench [--quick] [--json FILE] [--svg FILE] [--compare FILE]")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "bench":
		return benchCommand(ctx, args[1:], stdout, stderr)
	case idlePhaseCommand:
		return idlePhase(ctx, args[1:], stdout)
	case "demo":
		if len(args) > 1 {
			return fmt.Errorf("%w: demo takes no arguments", errUsage)
		}
		return demo(ctx, stdout)
	case "lookup", "partitions":
		fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
		fs.SetOutput(stderr)
		url := fs.String("url", "pulsar://localhost:6650", "broker service URL (pulsar:// or pulsar+ssl://)")
		timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
		if err := fs.Parse(args[1:]); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: %s needs exactly one TOPIC", errUsage, args[0])
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		if args[0] == "lookup" {
			return lookup(ctx, stdout, *url, fs.Arg(0))
		}
		return partitions(ctx, stdout, *url, fs.Arg(0))
	case "bridge":
		return bridge(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}
