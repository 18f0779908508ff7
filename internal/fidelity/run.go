package fidelity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// Target is a broker the scenarios run against.
type Target struct {
	// Name says which broker it is in messages ("real broker",
	// "pulsartest").
	Name string
	// Dial opens a new connection to the broker's binary protocol port.
	Dial func(ctx context.Context) (net.Conn, error)
	// ServiceURL and ServiceURLTLS are what the broker advertises in
	// lookups; the transcripts show them as {service_url} and
	// {service_url_tls}.
	ServiceURL, ServiceURLTLS string
	// CreatePartitioned creates a partitioned topic of n partitions, as
	// an administrator would (the admin REST API of a broker).
	CreatePartitioned func(ctx context.Context, topic string, n int) error
}

// MaxMessageSize is the maxMessageSize of the real broker that
// scripts/pulsar.sh configures; Pulsartest configures the fake the same
// way, so that the transcripts can agree.
const MaxMessageSize = 1 << 20

// Pulsartest starts a pulsartest server on TCP loopback, configured like
// the real broker of scripts/pulsar.sh (anonymous clients allowed, 1 MiB
// max message size, a TLS URL advertised), and returns it as a Target. The
// server is closed when the test ends.
func Pulsartest(tb testing.TB) (Target, *pulsartest.Server) {
	tb.Helper()
	const tlsURL = "pulsar+ssl://127.0.0.1:1"
	srv := pulsartest.NewTCP(tb, pulsartest.WithMaxMessageSize(MaxMessageSize), pulsartest.WithAdvertisedTLSURL(tlsURL))
	u := srv.URL()
	addr := u[len("pulsar://"):]
	return Target{
		Name: "pulsartest",
		Dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
		ServiceURL:    u,
		ServiceURLTLS: tlsURL,
		CreatePartitioned: func(_ context.Context, topic string, n int) error {
			srv.SetPartitions(topic, n)
			return nil
		},
	}, srv
}

// Run runs sc against target and returns its transcript. An answer that
// does not come, or a connection that closes, ends the scenario there: the
// transcript says so (Timeout, Closed) and Run returns it without error.
// The error is for what prevents a run at all (a dial that fails, a
// topic that cannot be created).
func Run(ctx context.Context, target Target, sc Scenario) (tr Transcript, err error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	run := "fidelity-" + hex.EncodeToString(b[:])
	tr = Transcript{Scenario: sc.Name}
	s := &Session{
		ctx:    ctx,
		target: target,
		run:    run,
		norm:   newNormaliser(run, target.ServiceURL, target.ServiceURLTLS),
		tr:     &tr,
	}
	defer s.hangUp()
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if e, ok := r.(error); ok {
			if errors.Is(e, errAbort) {
				return
			}
			err = e
			return
		}
		panic(r)
	}()
	sc.Run(s)
	return tr, nil
}

// maxFrame is the largest frame the sessions read.
const maxFrame = frame.DefaultMaxFrameSize

// Describe renders a transcript as lines, for failure messages.
func Describe(tr Transcript) string {
	out := ""
	for _, e := range tr.Events {
		out += fmt.Sprintf("  %-24s %s %s", e.Step, e.Dir, e.Type)
		if len(e.Fields) > 0 {
			f := flatten(e.Fields)
			for _, k := range sortedKeys(f) {
				out += " " + k + "=" + f[k]
			}
		}
		out += "\n"
	}
	return out
}
