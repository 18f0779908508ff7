// Command capture records real SEND and MESSAGE frames for the tests of
// proto/message: what the official Java, Go and Python Pulsar clients
// write when they publish, batched and compressed, and what a real Apache
// Pulsar broker delivers to this library's consumer path.
//
// It needs the broker of scripts/pulsar.sh and the clients of
// interop/setup-clients.sh:
//
//	bash scripts/pulsar.sh start && eval "$(bash scripts/pulsar.sh env)"
//	bash interop/setup-clients.sh
//	cd interop && go run ./cmd/capture
//
// Every connection — this library's Broker (the consumer) and each
// client's producer — goes through a recording TCP proxy in front of
// PULSAR_SERVICE_URL (the standalone broker tells clients to stay on the
// service URL, so lookups keep them on the proxy). The proxy cuts the byte
// streams into whole frames, exactly as sent. For each capture the program
// subscribes with SUBSCRIBE and FLOW on a fresh topic, has one client
// publish a list of messages (one batch, or one message alone), waits for
// the MESSAGE push, and writes the one SEND frame the client wrote and the
// one MESSAGE frame the broker wrote, each as NAME.frame (the whole frame,
// size field first) with NAME.json (who made it, its compression, whether
// batched, whether it carries broker entry metadata, and the messages the
// producer was asked to send). It checks each frame with proto/frame (the
// checksum, the compression and batch size in the metadata, the broker
// entry metadata, and the messages themselves, decompressed and split with
// proto/message) before writing it.
//
// MESSAGE captures are named message-CLIENT-COMPRESSION-batch|single, with
// "-entrymeta" appended when the broker prefixed broker entry metadata
// (start it with PULSAR_BROKER_ENTRY_METADATA=1 for that); SEND captures
// send-CLIENT-COMPRESSION-batch|single. See docs/realbroker.md.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/message"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// brokerName names the broker in the captures' source lines.
const brokerName = "Apache Pulsar 4.2.4"

// wait bounds every wait for an answer, a push or a client program.
const wait = 60 * time.Second

// compressions are the compression types every client publishes with.
var compressions = []string{"NONE", "LZ4", "ZLIB", "ZSTD", "SNAPPY"}

// Message is one message as the producer was asked to send it, as the
// capture files list it.
type Message struct {
	Payload    string            `json:"payload"`
	Key        string            `json:"key,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
	EventTime  uint64            `json:"event_time,omitempty"`
}

// Capture is a capture's NAME.json.
type Capture struct {
	Source              string    `json:"source"`
	Command             string    `json:"command"`
	Compression         string    `json:"compression"`
	Batched             bool      `json:"batched"`
	BrokerEntryMetadata bool      `json:"broker_entry_metadata"`
	Messages            []Message `json:"messages"`
}

// job is one publication: a client, a compression, batched or one
// message alone.
type job struct {
	client      string // "java", "go" or "python"
	compression string
	batched     bool
}

func (j job) messages() []Message {
	tag := j.client + " " + strings.ToLower(j.compression)
	if !j.batched {
		return []Message{{
			Payload:    "single from " + tag,
			Key:        "order-42",
			Properties: map[string]string{"origin": j.client, "kind": "single"},
			EventTime:  1700000000123,
		}}
	}
	// Four messages, each with other optional fields, and text repeated
	// enough that every compression has something to compress.
	return []Message{
		{Payload: "batched 0 from " + tag + ", hello hello hello", Key: "key-0", Properties: map[string]string{"index": "0"}},
		{Payload: "batched 1 from " + tag + ", hello hello hello", Properties: map[string]string{"index": "1", "origin": j.client}},
		{Payload: "batched 2 from " + tag + ", hello hello hello", EventTime: 1700000000002},
		{Payload: "batched 3 from " + tag + ", hello hello hello"},
	}
}

func (j job) shape() string {
	if j.batched {
		return "batch"
	}
	return "single"
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "capture:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("dir", filepath.Join("..", "proto", "message", "testdata", "captures"), "where to write the captures")
	only := flag.String("clients", "java,go,python", "the clients to run, comma-separated")
	flag.Parse()
	service := os.Getenv("PULSAR_SERVICE_URL")
	if service == "" {
		return errors.New("PULSAR_SERVICE_URL is not set: run `bash scripts/pulsar.sh start` and `eval \"$(bash scripts/pulsar.sh env)\"` first (docs/realbroker.md)")
	}
	u, err := url.Parse(service)
	if err != nil {
		return fmt.Errorf("PULSAR_SERVICE_URL: %w", err)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}

	px, err := startProxy(u.Host)
	if err != nil {
		return err
	}
	defer px.ln.Close()
	proxied := "pulsar://" + px.ln.Addr().String()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b, err := pulsarconn.Start(proxied)
	if err != nil {
		return err
	}
	defer b.Stop(context.Background())
	if err := b.WaitConnected(ctx); err != nil {
		return err
	}
	gc, err := pulsar.NewClient(pulsar.ClientOptions{
		URL: proxied, OperationTimeout: wait, ConnectionTimeout: wait,
		Logger:            log.NewLoggerWithSlog(slog.New(slog.NewTextHandler(io.Discard, nil))),
		MetricsRegisterer: prometheus.NewRegistry(),
	})
	if err != nil {
		return err
	}
	defer gc.Close()

	// A batch with each compression and a single message uncompressed and
	// compressed from Java and Go; one LZ4 batch from Python.
	singleCompression := map[string]string{"java": "LZ4", "go": "ZSTD"}
	var jobs []job
	for _, c := range strings.Split(*only, ",") {
		switch c {
		case "java", "go":
			for _, comp := range compressions {
				jobs = append(jobs, job{c, comp, true})
			}
			jobs = append(jobs, job{c, "NONE", false}, job{c, singleCompression[c], false})
		case "python":
			jobs = append(jobs, job{c, "LZ4", true})
		default:
			return fmt.Errorf("unknown client %q", c)
		}
	}
	publishers := map[string]func(context.Context, string, job) error{
		"java": func(ctx context.Context, topic string, j job) error {
			return program(ctx, javaCommand(), proxied, topic, j)
		},
		"python": func(ctx context.Context, topic string, j job) error {
			return program(ctx, pythonCommand(), proxied, topic, j)
		},
		"go": func(ctx context.Context, topic string, j job) error { return publishGo(ctx, gc, topic, j) },
	}
	for _, j := range jobs {
		if err := capture(ctx, b, px, *dir, j, publishers[j.client]); err != nil {
			return fmt.Errorf("%s %s %s: %w", j.client, j.compression, j.shape(), err)
		}
	}
	return nil
}

// capture subscribes on a fresh topic, has j's client publish, and writes
// the SEND and MESSAGE frames it recorded.
func capture(ctx context.Context, b *pulsarconn.Broker, px *proxy, dir string, j job,
	publish func(context.Context, string, job) error) error {
	topic := fmt.Sprintf("persistent://public/default/capture-%s-%s-%s-%d", j.client, strings.ToLower(j.compression), j.shape(), time.Now().UnixNano())
	pushes := make(chan pulsarconn.Push, 16)
	cid := b.NewConsumerID()
	reg, err := b.RegisterConsumer(ctx, cid, pulsarconn.HandlerFunc(func(p pulsarconn.Push) { pushes <- p }))
	if err != nil {
		return err
	}
	defer reg.Close(ctx)
	if _, err := b.LookupTopic(ctx, topic, false); err != nil {
		return fmt.Errorf("LOOKUP: %w", err)
	}
	if _, err := b.Request(ctx, &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_SUBSCRIBE.Enum(),
		Subscribe: &pulsarpb.CommandSubscribe{
			Topic: proto.String(topic), Subscription: proto.String("capture"),
			SubType: pulsarpb.CommandSubscribe_Exclusive.Enum(), ConsumerId: proto.Uint64(cid),
			InitialPosition: pulsarpb.CommandSubscribe_Earliest.Enum(),
		},
	}); err != nil {
		return fmt.Errorf("SUBSCRIBE: %w", err)
	}
	if err := b.Send(ctx, &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_FLOW.Enum(),
		Flow: &pulsarpb.CommandFlow{ConsumerId: proto.Uint64(cid), MessagePermits: proto.Uint32(16)},
	}); err != nil {
		return fmt.Errorf("FLOW: %w", err)
	}

	mark := px.mark()
	if err := publish(ctx, topic, j); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	select {
	case p := <-pushes:
		if p.Kind != pulsarconn.PushMessage {
			return fmt.Errorf("push %v (%v), want a message", p.Kind, p.Err)
		}
	case <-time.After(wait):
		return fmt.Errorf("no MESSAGE within %v", wait)
	}
	// The proxy records a frame before it forwards it: the MESSAGE the
	// Handler saw is recorded, and so is the SEND it came from.
	sends := px.since(mark, true, pulsarpb.BaseCommand_SEND)
	messages := px.since(mark, false, pulsarpb.BaseCommand_MESSAGE)
	if len(sends) != 1 || len(messages) != 1 {
		return fmt.Errorf("recorded %d SEND and %d MESSAGE frames, want one of each", len(sends), len(messages))
	}

	want := j.messages()
	producer := map[string]string{
		"java":   "Apache Pulsar Java client 4.2.4 producer",
		"go":     "pulsar-client-go v0.19.0 producer",
		"python": "Apache Pulsar Python client 3.13.0 producer",
	}[j.client]
	name := func(cmd string) string {
		return fmt.Sprintf("%s-%s-%s-%s", cmd, j.client, strings.ToLower(j.compression), j.shape())
	}
	sendCap := Capture{Source: producer + "; SEND as it wrote it to " + brokerName,
		Command: "SEND", Compression: j.compression, Batched: j.batched, Messages: want}
	if err := check(sends[0], sendCap); err != nil {
		return fmt.Errorf("SEND: %w", err)
	}
	msgCap := sendCap
	msgCap.Command = "MESSAGE"
	msgCap.BrokerEntryMetadata = hasEntryMetadata(messages[0])
	msgCap.Source = producer + "; MESSAGE from " + brokerName + " to pulsarconn's consumer"
	msgName := name("message")
	if msgCap.BrokerEntryMetadata {
		msgCap.Source += " (brokerEntryMetadataInterceptors: AppendIndexMetadataInterceptor, AppendBrokerTimestampMetadataInterceptor)"
		msgName += "-entrymeta"
	}
	if err := check(messages[0], msgCap); err != nil {
		return fmt.Errorf("MESSAGE: %w", err)
	}
	if err := write(dir, name("send"), sends[0], sendCap); err != nil {
		return err
	}
	if err := write(dir, msgName, messages[0], msgCap); err != nil {
		return err
	}
	fmt.Printf("%s, %s: SEND %d bytes, MESSAGE %d bytes\n", name("send"), msgName, len(sends[0]), len(messages[0]))
	return nil
}

func hasEntryMetadata(f []byte) bool {
	fr, err := frame.Parse(f[4:])
	return err == nil && fr.Payload != nil && fr.Payload.BrokerEntryMetadata != nil
}

// check parses f with proto/frame and compares it with what c says: the
// command, the checksum, the compression and batch size in the metadata,
// broker entry metadata, and every message's payload, key, properties and
// event time.
func check(f []byte, c Capture) error {
	fr, err := frame.Parse(f[4:])
	if err != nil {
		return err
	}
	if got := fr.Command.GetType().String(); got != c.Command || fr.Payload == nil {
		return fmt.Errorf("a %s frame, want %s with a payload", got, c.Command)
	}
	if !fr.Payload.HasChecksum || !fr.Payload.ChecksumOK {
		return fmt.Errorf("checksum carried %v, ok %v", fr.Payload.HasChecksum, fr.Payload.ChecksumOK)
	}
	if (fr.Payload.BrokerEntryMetadata != nil) != c.BrokerEntryMetadata {
		return fmt.Errorf("broker entry metadata %v, want %v", fr.Payload.BrokerEntryMetadata != nil, c.BrokerEntryMetadata)
	}
	if c.BrokerEntryMetadata {
		bem, err := fr.Payload.DecodeBrokerEntryMetadata()
		if err != nil {
			return err
		}
		if bem.BrokerTimestamp == nil || bem.Index == nil {
			return fmt.Errorf("broker entry metadata %v, want a broker timestamp and an index", bem)
		}
	}
	md, err := fr.Payload.DecodeMetadata()
	if err != nil {
		return err
	}
	if md.GetCompression().String() != c.Compression {
		return fmt.Errorf("compression %v, want %s", md.GetCompression(), c.Compression)
	}
	if md.NumMessagesInBatch != nil != c.Batched || c.Batched && int(md.GetNumMessagesInBatch()) != len(c.Messages) {
		return fmt.Errorf("num_messages_in_batch %v, want batched %v of %d", md.NumMessagesInBatch, c.Batched, len(c.Messages))
	}
	e, err := message.Decode(fr.Payload)
	if err != nil {
		return err
	}
	if len(e.Messages) != len(c.Messages) {
		return fmt.Errorf("%d messages, want %d", len(e.Messages), len(c.Messages))
	}
	for i, m := range e.Messages {
		if err := sameMessage(i, c.Messages[i], m.Payload, m.Key, m.Properties, m.EventTime); err != nil {
			return err
		}
	}
	return nil
}

func sameMessage(i int, want Message, payload []byte, key string, props map[string]string, eventTime uint64) error {
	got := Message{Payload: string(payload), Key: key, EventTime: eventTime}
	if len(props) > 0 {
		got.Properties = props
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	if string(a) != string(b) {
		return fmt.Errorf("message %d is %s, want %s", i, a, b)
	}
	return nil
}

func write(dir, name string, f []byte, c Capture) error {
	js, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".frame"), f, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".json"), append(js, '\n'), 0o644)
}

// publishGo publishes j's messages with pulsar-client-go: batched, all in
// one batch (SendAsync until it is full); otherwise one Send.
func publishGo(ctx context.Context, c pulsar.Client, topic string, j job) error {
	comp := map[string]pulsar.CompressionType{"NONE": pulsar.NoCompression, "LZ4": pulsar.LZ4,
		"ZLIB": pulsar.ZLib, "ZSTD": pulsar.ZSTD, "SNAPPY": pulsar.SNAPPY}[j.compression]
	msgs := j.messages()
	p, err := c.CreateProducer(pulsar.ProducerOptions{
		Topic: topic, CompressionType: comp, DisableBatching: !j.batched,
		BatchingMaxMessages: uint(len(msgs)), BatchingMaxPublishDelay: time.Hour,
	})
	if err != nil {
		return err
	}
	defer p.Close()
	sent := make(chan error, len(msgs))
	for _, m := range msgs {
		pm := &pulsar.ProducerMessage{Payload: []byte(m.Payload), Key: m.Key, Properties: m.Properties}
		if m.EventTime != 0 {
			pm.EventTime = time.UnixMilli(int64(m.EventTime))
		}
		p.SendAsync(ctx, pm, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) { sent <- err })
	}
	if err := p.FlushWithCtx(ctx); err != nil {
		return err
	}
	for range msgs {
		if err := <-sent; err != nil {
			return err
		}
	}
	return nil
}

// program runs one of the client programs (interop/java's
// CaptureProducer, interop/python's capture_producer.py) for j, the
// messages on its stdin, one a line: tab-separated payload, key, event
// time and name=value properties.
func program(ctx context.Context, argv []string, serviceURL, topic string, j job) error {
	var in strings.Builder
	for _, m := range j.messages() {
		fields := []string{m.Payload, m.Key, strconv.FormatUint(m.EventTime, 10)}
		for _, k := range slices.Sorted(maps.Keys(m.Properties)) {
			fields = append(fields, k+"="+m.Properties[k])
		}
		in.WriteString(strings.Join(fields, "\t") + "\n")
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], "--url", serviceURL, "--topic", topic,
		"--compression", j.compression, "--batched", strconv.FormatBool(j.batched))...)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", argv[0], err, out)
	}
	return nil
}

func javaCommand() []string {
	jar := filepath.Join("java", "target", "pulsar-interop.jar")
	return []string{"java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-cp", jar + string(os.PathListSeparator) + filepath.Join("java", "target", "lib", "*"),
		"org.pulsarconn.interop.CaptureProducer"}
}

func pythonCommand() []string {
	return []string{filepath.Join("python", ".venv", "bin", "python"), filepath.Join("python", "capture_producer.py")}
}

// proxy is a recording TCP proxy: it forwards each connection to the
// broker whole frame by whole frame and keeps every frame, in the order it
// forwarded them.
type proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	frames []recorded
}

type recorded struct {
	toBroker bool
	typ      pulsarpb.BaseCommand_Type
	bytes    []byte
}

func startProxy(target string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.handle(c)
		}
	}()
	return p, nil
}

func (p *proxy) handle(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	go p.pipe(c, up, true)
	p.pipe(up, c, false)
}

// pipe copies frames from from to to, recording each before it is
// forwarded.
func (p *proxy) pipe(from, to net.Conn, toBroker bool) {
	defer from.Close()
	defer to.Close()
	r := bufio.NewReader(from)
	for {
		var size [4]byte
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(size[:])
		if n > frame.DefaultMaxFrameSize {
			return
		}
		f := make([]byte, 4+n)
		copy(f, size[:])
		if _, err := io.ReadFull(r, f[4:]); err != nil {
			return
		}
		typ := pulsarpb.BaseCommand_Type(0)
		if fr, err := frame.Parse(f[4:]); err == nil {
			typ = fr.Command.GetType()
		}
		p.mu.Lock()
		p.frames = append(p.frames, recorded{toBroker, typ, f})
		p.mu.Unlock()
		if _, err := to.Write(f); err != nil {
			return
		}
	}
}

func (p *proxy) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.frames)
}

// since returns the frames of type typ in one direction recorded after
// mark.
func (p *proxy) since(mark int, toBroker bool, typ pulsarpb.BaseCommand_Type) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out [][]byte
	for _, r := range p.frames[mark:] {
		if r.toBroker == toBroker && r.typ == typ {
			out = append(out, r.bytes)
		}
	}
	return out
}
