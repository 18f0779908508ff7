package realpulsar

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// safety bounds every wait of a test, so that a broker that does not
// answer fails the test instead of hanging it. Tests never sleep to wait
// for something: they block on an answer, a push or a channel, bounded by
// this.
const safety = 30 * time.Second

// realBroker is what scripts/pulsar.sh printed: where the broker listens
// and the files of this run.
type realBroker struct {
	ServiceURL    string // PULSAR_SERVICE_URL, pulsar://127.0.0.1:6650
	ServiceURLTLS string // PULSAR_SERVICE_URL_TLS, pulsar+ssl://127.0.0.1:6651
	AdminURL      string // PULSAR_ADMIN_URL, http://127.0.0.1:8080
	CAFile        string // PULSAR_TLS_CA: the CA that signed the broker's certificate
	WrongCAFile   string // PULSAR_TLS_WRONG_CA: a CA that signed nothing
	SecretFile    string // PULSAR_TOKEN_SECRET: the HMAC key of the token provider
	PIDFile       string // PULSAR_PID_FILE: the broker process's pid
	Ctl           string // PULSAR_CTL: scripts/pulsar.sh itself, for restart
}

// env reads the broker's variables; a missing one fails the test.
func env(t testing.TB) realBroker {
	t.Helper()
	get := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			t.Fatalf("%s is not set: start the broker with `bash scripts/pulsar.sh start` and eval the variables it prints", name)
		}
		return v
	}
	return realBroker{
		ServiceURL:    get("PULSAR_SERVICE_URL"),
		ServiceURLTLS: get("PULSAR_SERVICE_URL_TLS"),
		AdminURL:      get("PULSAR_ADMIN_URL"),
		CAFile:        get("PULSAR_TLS_CA"),
		WrongCAFile:   get("PULSAR_TLS_WRONG_CA"),
		SecretFile:    get("PULSAR_TOKEN_SECRET"),
		PIDFile:       get("PULSAR_PID_FILE"),
		Ctl:           get("PULSAR_CTL"),
	}
}

// bounded returns a context that ends after safety, or with the test.
func bounded(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	t.Cleanup(cancel)
	return ctx
}

// mintToken signs an HS256 JSON Web Token for subject with the broker's
// secret, as the broker's AuthenticationProviderToken verifies it. A zero
// exp leaves the expiry out.
func mintToken(t testing.TB, secretFile, subject string, exp time.Time) string {
	t.Helper()
	key, err := os.ReadFile(secretFile)
	if err != nil {
		t.Fatalf("read the token secret: %v", err)
	}
	return signToken(key, subject, exp)
}

func signToken(key []byte, subject string, exp time.Time) string {
	enc := base64.RawURLEncoding
	claims := map[string]any{"sub": subject}
	if !exp.IsZero() {
		claims["exp"] = exp.Unix()
	}
	body, _ := json.Marshal(claims)
	unsigned := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(body)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(unsigned))
	return unsigned + "." + enc.EncodeToString(mac.Sum(nil))
}

// admin calls the broker's admin REST API: method on path (under
// /admin/v2), with body as JSON when not nil. It fails the test on a
// transport error or a status outside 2xx, and returns the response body.
func admin(t testing.TB, rb realBroker, method, path string, body any) []byte {
	t.Helper()
	out, status, err := adminCall(rb, method, path, body)
	if err != nil {
		t.Fatalf("admin %s %s: %v", method, path, err)
	}
	if status/100 != 2 {
		t.Fatalf("admin %s %s: HTTP %d: %s", method, path, status, out)
	}
	return out
}

func adminCall(rb realBroker, method, path string, body any) ([]byte, int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, 0, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(rb.AdminURL, "/")+"/admin/v2"+path, rd)
	if err != nil {
		return nil, 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return out, resp.StatusCode, err
}

// createPartitioned creates topic (a short name in public/default) with n
// partitions through the admin API, as `pulsar-admin topics
// create-partitioned-topic` does.
func createPartitioned(t testing.TB, rb realBroker, topic string, n int) {
	t.Helper()
	admin(t, rb, http.MethodPut, "/persistent/public/default/"+topic+"/partitions", n)
}

// topicName is a topic unique to the test and the run, in the short form.
func topicName(t testing.TB) string {
	b := []byte(t.Name())
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			b[i] = '-'
		}
	}
	return fmt.Sprintf("realpulsar-%s-%d", b, time.Now().UnixNano())
}

// fullName is the name the broker gives a short topic name.
func fullName(topic string) string { return "persistent://public/default/" + topic }

// start starts a Broker for url with opts, waits until it is connected and
// stops it when the test ends.
func start(t testing.TB, url string, opts ...pulsarconn.BrokerOption) *pulsarconn.Broker {
	t.Helper()
	b, err := pulsarconn.Start(url, opts...)
	if err != nil {
		t.Fatalf("Start(%s): %v", url, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), safety)
		defer cancel()
		b.Stop(ctx)
	})
	if err := b.WaitConnected(bounded(t)); err != nil {
		t.Fatalf("WaitConnected(%s): %v", url, err)
	}
	return b
}

// own looks topic up, as every client does before it uses a topic: a
// broker serves PRODUCER and SUBSCRIBE only for topics whose namespace
// bundle it owns, and a LOOKUP is what makes it take a bundle nobody owns
// (after a restart, say). Without it SUBSCRIBE can fail with
// ServiceNotReady, "Namespace bundle ... not served by this instance.
// Please redo the lookup".
func own(ctx context.Context, b *pulsarconn.Broker, topic string) error {
	_, err := b.LookupTopic(ctx, topic, false)
	return err
}

// createProducer looks topic up, sends PRODUCER for id on topic and
// returns the broker's PRODUCER_SUCCESS.
func createProducer(ctx context.Context, b *pulsarconn.Broker, conn, id uint64, topic string) (*pulsarpb.CommandProducerSuccess, error) {
	if err := own(ctx, b, topic); err != nil {
		return nil, err
	}
	resp, err := b.RequestOn(ctx, conn, &pulsarpb.BaseCommand{
		Type:     pulsarpb.BaseCommand_PRODUCER.Enum(),
		Producer: &pulsarpb.CommandProducer{Topic: proto.String(topic), ProducerId: proto.Uint64(id)},
	})
	if err != nil {
		return nil, err
	}
	return resp.GetProducerSuccess(), nil
}

// sendFrame encodes one SEND of payload for producer id with sequence id
// seq, as a producer library would before calling PublishMessage.
func sendFrame(t testing.TB, producerID, seq uint64, producerName string, payload []byte) []byte {
	t.Helper()
	f, err := frame.AppendMessage(nil,
		&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEND.Enum(),
			Send: &pulsarpb.CommandSend{ProducerId: proto.Uint64(producerID), SequenceId: proto.Uint64(seq)}},
		&pulsarpb.MessageMetadata{ProducerName: proto.String(producerName), SequenceId: proto.Uint64(seq),
			PublishTime: proto.Uint64(uint64(time.Now().UnixMilli()))},
		payload)
	if err != nil {
		t.Fatalf("encode SEND %d: %v", seq, err)
	}
	return f
}

// subscribe looks topic up, sends SUBSCRIBE for consumer id (of subType,
// from the earliest message) and waits for SUCCESS.
func subscribe(ctx context.Context, b *pulsarconn.Broker, id uint64, topic, sub string, subType pulsarpb.CommandSubscribe_SubType) error {
	if err := own(ctx, b, topic); err != nil {
		return err
	}
	_, err := b.Request(ctx, &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_SUBSCRIBE.Enum(),
		Subscribe: &pulsarpb.CommandSubscribe{
			Topic: proto.String(topic), Subscription: proto.String(sub), SubType: subType.Enum(),
			ConsumerId: proto.Uint64(id), InitialPosition: pulsarpb.CommandSubscribe_Earliest.Enum(),
		},
	})
	return err
}

// flow grants the broker n permits for consumer id.
func flow(ctx context.Context, b *pulsarconn.Broker, id uint64, n uint32) error {
	return b.Send(ctx, &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_FLOW.Enum(),
		Flow: &pulsarpb.CommandFlow{ConsumerId: proto.Uint64(id), MessagePermits: proto.Uint32(n)},
	})
}

// pushes collects a registration's pushes on a channel large enough that
// the Handler never blocks in these tests.
func pushes(n int) (chan pulsarconn.Push, pulsarconn.Handler) {
	ch := make(chan pulsarconn.Push, n+1) // +1: room for the last push, PushEnded
	return ch, pulsarconn.HandlerFunc(func(p pulsarconn.Push) { ch <- p })
}

// next receives one push from ch within safety.
func next(t testing.TB, ch <-chan pulsarconn.Push, what string) pulsarconn.Push {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-time.After(safety):
		t.Fatalf("no %s within %v", what, safety)
		return pulsarconn.Push{}
	}
}
