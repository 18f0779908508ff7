package interop

// This file is the worked example of docs/observability.md: exporting a
// pulsarconn Client's events and metrics to Prometheus, with the library
// itself depending on no metrics library.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// promObserver turns pulsarconn events into Prometheus metrics.
type promObserver struct {
	requests    *prometheus.HistogramVec
	connections *prometheus.CounterVec
	lookups     *prometheus.CounterVec
	redirects   prometheus.Counter
}

func newPromObserver(reg prometheus.Registerer) *promObserver {
	o := &promObserver{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pulsarconn_request_duration_seconds", Help: "Request latency by command type and outcome.",
		}, []string{"type", "outcome"}),
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulsarconn_connection_events_total", Help: "Connections opened, closed and failed.",
		}, []string{"event"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulsarconn_lookups_total", Help: "Lookups by outcome.",
		}, []string{"outcome"}),
		redirects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulsarconn_lookup_redirects_total", Help: "Lookup redirects followed.",
		}),
	}
	reg.MustRegister(o.requests, o.connections, o.lookups, o.redirects)
	return o
}

func outcome(err error) string {
	var se *pulsarconn.ServerError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &se):
		return se.Code.String()
	case errors.Is(err, pulsarconn.ErrRequestTimeout):
		return "timeout"
	default:
		return "error"
	}
}

// Observe implements pulsarconn.Observer.
func (o *promObserver) Observe(ev pulsarconn.Event) {
	switch ev := ev.(type) {
	case pulsarconn.RequestCompleted:
		o.requests.WithLabelValues(ev.Type.String(), outcome(ev.Err)).Observe(ev.Latency.Seconds())
	case pulsarconn.ConnectionOpened:
		o.connections.WithLabelValues("opened").Inc()
	case pulsarconn.ConnectionClosed:
		o.connections.WithLabelValues("closed").Inc()
	case pulsarconn.HandshakeFailed:
		o.connections.WithLabelValues("failed").Inc()
	case pulsarconn.LookupRedirected:
		o.redirects.Inc()
	case pulsarconn.LookupCompleted:
		o.lookups.WithLabelValues(outcome(ev.Err)).Inc()
	}
}

// clientCollector reads Client.Metrics at scrape time.
type clientCollector struct {
	client                          *pulsarconn.Client
	open, pending, producers, frame *prometheus.Desc
	bytes                           *prometheus.Desc
}

func newClientCollector(c *pulsarconn.Client) *clientCollector {
	return &clientCollector{
		client:    c,
		open:      prometheus.NewDesc("pulsarconn_open_connections", "Connected broker connections.", nil, nil),
		pending:   prometheus.NewDesc("pulsarconn_pending_requests", "Requests awaiting an answer.", nil, nil),
		producers: prometheus.NewDesc("pulsarconn_registrations", "Registered producers and consumers.", []string{"kind"}, nil),
		frame:     prometheus.NewDesc("pulsarconn_frames_total", "Frames in and out.", []string{"direction"}, nil),
		bytes:     prometheus.NewDesc("pulsarconn_bytes_total", "Bytes in and out.", []string{"direction"}, nil),
	}
}

func (c *clientCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.open, c.pending, c.producers, c.frame, c.bytes} {
		ch <- d
	}
}

func (c *clientCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.client.Metrics()
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(m.Open))
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(m.Total.Pending))
	ch <- prometheus.MustNewConstMetric(c.producers, prometheus.GaugeValue, float64(m.Total.Producers), "producer")
	ch <- prometheus.MustNewConstMetric(c.producers, prometheus.GaugeValue, float64(m.Total.Consumers), "consumer")
	ch <- prometheus.MustNewConstMetric(c.frame, prometheus.CounterValue, float64(m.Total.FramesIn), "in")
	ch <- prometheus.MustNewConstMetric(c.frame, prometheus.CounterValue, float64(m.Total.FramesOut), "out")
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(m.Total.BytesIn), "in")
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(m.Total.BytesOut), "out")
}

func TestPrometheusExport(t *testing.T) {
	network := memory.NewNetwork()
	l, err := network.Listen("broker:6650")
	require.NoError(t, err)
	srv := pulsartest.NewServer(pulsartest.WithAdvertisedURL("pulsar://broker:6650"))
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	srv.SetPartitions("persistent://public/default/p", 2)

	reg := prometheus.NewPedanticRegistry()
	obs := newPromObserver(reg)
	client, err := pulsarconn.NewClient("pulsar://broker:6650",
		pulsarconn.WithTransport(network), pulsarconn.WithObserver(obs))
	require.NoError(t, err)
	reg.MustRegister(newClientCollector(client))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := client.LookupTopic(ctx, "persistent://public/default/p")
	require.NoError(t, err)
	require.NoError(t, b.WaitConnected(ctx))
	n, err := client.PartitionedTopicMetadata(ctx, "persistent://public/default/p")
	require.NoError(t, err)
	require.Equal(t, 2, n)
	_, err = b.RegisterProducer(ctx, 1, pulsarconn.HandlerFunc(func(pulsarconn.Push) {}))
	require.NoError(t, err)

	assert.Equal(t, 1.0, testutil.ToFloat64(obs.lookups.WithLabelValues("ok")))
	assert.Equal(t, 2, testutil.CollectAndCount(obs.requests), "LOOKUP and PARTITIONED_METADATA series")
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP pulsarconn_open_connections Connected broker connections.
# TYPE pulsarconn_open_connections gauge
pulsarconn_open_connections 1
# HELP pulsarconn_registrations Registered producers and consumers.
# TYPE pulsarconn_registrations gauge
pulsarconn_registrations{kind="consumer"} 0
pulsarconn_registrations{kind="producer"} 1
`), "pulsarconn_open_connections", "pulsarconn_registrations"))
	frames, err := reg.Gather()
	require.NoError(t, err)
	var framesOut float64
	for _, mf := range frames {
		if mf.GetName() == "pulsarconn_frames_total" {
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == "out" {
					framesOut = m.GetCounter().GetValue()
				}
			}
		}
	}
	assert.Equal(t, 3.0, framesOut, "CONNECT, LOOKUP and PARTITIONED_METADATA")

	// Connection events are delivered in order with pushes, after the
	// change they report; Close waits for them.
	require.NoError(t, client.Close(ctx))
	assert.Equal(t, 1.0, testutil.ToFloat64(obs.connections.WithLabelValues("opened")))
	assert.Equal(t, 1.0, testutil.ToFloat64(obs.connections.WithLabelValues("closed")))
}
