package main

import (
	"context"
	"fmt"
	"io"

	"github.com/pulsarconn/pulsarconn"
)

// connect starts a Broker for url with fail-fast calls and waits for its
// first connection.
func connect(ctx context.Context, url string, opts ...pulsarconn.BrokerOption) (*pulsarconn.Broker, error) {
	b, err := pulsarconn.Start(url, opts...)
	if err != nil {
		return nil, err
	}
	if err := b.WaitConnected(ctx); err != nil {
		b.Stop(context.Background())
		return nil, err
	}
	return b, nil
}

func lookup(ctx context.Context, w io.Writer, url, topic string) error {
	b, err := connect(ctx, url)
	if err != nil {
		return err
	}
	defer b.Stop(context.Background())
	res, err := b.LookupTopic(ctx, topic, false)
	if err != nil {
		return err
	}
	printLookup(w, topic, res)
	return nil
}

func printLookup(w io.Writer, topic string, res *pulsarconn.LookupResult) {
	kind := "connect"
	if res.Redirect {
		kind = "redirect"
	}
	fmt.Fprintf(w, "lookup %s: %s to %s", topic, kind, res.BrokerURL)
	if res.BrokerURLTLS != "" {
		fmt.Fprintf(w, " (tls %s)", res.BrokerURLTLS)
	}
	fmt.Fprintf(w, " authoritative=%t proxy=%t\n", res.Authoritative, res.ProxyThroughServiceURL)
}

func partitions(ctx context.Context, w io.Writer, url, topic string) error {
	b, err := connect(ctx, url)
	if err != nil {
		return err
	}
	defer b.Stop(context.Background())
	n, err := b.PartitionedTopicMetadata(ctx, topic)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "partitions %s: %d\n", topic, n)
	return nil
}
