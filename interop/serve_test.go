package interop

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServeCommandWithOfficialClient builds cmd/pulsarconn, runs
// "pulsarconn serve --listen pulsar://127.0.0.1:0" as its own process, and
// points an unmodified pulsar-client-go producer and consumer at the URL
// it prints.
func TestServeCommandWithOfficialClient(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pulsarconn")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "./cmd/pulsarconn")
	build.Dir = ".."
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	ctx := bounded(t)
	cmd := exec.CommandContext(ctx, bin, "serve", "--listen", "pulsar://127.0.0.1:0", "--partitions", "orders=2")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	lines := bufio.NewScanner(stdout)
	var url string
	for url == "" && lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "serving "); ok {
			url = strings.Fields(rest)[0]
		}
	}
	require.NotEmpty(t, url, "serve printed no URL")

	client := newClient(t, pulsar.ClientOptions{URL: url})
	topic := fullName(topicName(t))
	consumer, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	require.NoError(t, err)
	producer, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	require.NoError(t, err)
	msgs := payloads("served", 20)
	ids := sendAll(t, producer, msgs)
	got := receiveN(t, consumer, len(msgs))
	assert.Equal(t, msgs, payloadsOf(got))
	for i := range got {
		assert.True(t, sameID(ids[i], got[i].id), "message %d: receipt id %v, delivered id %v", i, ids[i], got[i].id)
		require.NoError(t, consumer.Ack(got[i].msg))
	}
	parts, err := client.TopicPartitions("orders")
	require.NoError(t, err)
	assert.Len(t, parts, 2)
	producer.Close()
	consumer.Close()
	client.Close()

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	var rest strings.Builder
	for lines.Scan() {
		rest.WriteString(lines.Text() + "\n")
	}
	require.NoError(t, cmd.Wait(), "serve exits 0 on Ctrl-C")
	assert.Contains(t, rest.String(), "stopped")
}
