package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/message"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// The tests in this file run pulsar-flex (https://www.npmjs.com/package/pulsar-flex),
// a pure JavaScript Pulsar client written by other people, against
// pulsartest: node runs js/flex.js, which produces, consumes and
// acknowledges flexCount messages and reports each message it consumed as
// one JSON line. Node and the npm packages are a prerequisite, like the Go
// modules: `npm ci --prefix interop/js` installs the version pinned in
// js/package-lock.json.

// flexCount is how many messages each run produces and consumes.
const flexCount = 100

// flexSubscription is the subscription flex.js makes.
const flexSubscription = "flex-sub"

// flexDeadline bounds a whole node run. flex.js stops itself after
// FLEX_TIMEOUT_MS (set below it), so this only catches a node that hangs
// before its own timer runs.
const (
	flexDeadline     = 60 * time.Second
	flexScriptBudget = 30 * time.Second
)

// flexLine is one line of flex.js's stdout: a consumed message, or the
// summary at the end.
type flexLine struct {
	Content   *string `json:"content"`
	MessageID *struct {
		LedgerID   uint64 `json:"ledgerId"`
		EntryID    uint64 `json:"entryId"`
		Partition  int32  `json:"partition"`
		BatchIndex int32  `json:"batchIndex"`
	} `json:"messageId"`
	RedeliveryCount int `json:"redeliveryCount"`
	Summary         *struct {
		Produced int    `json:"produced"`
		Consumed int    `json:"consumed"`
		Acked    int    `json:"acked"`
		Mode     string `json:"mode"`
	} `json:"summary"`
}

// flexScript returns the path of js/flex.js and the node binary, and
// fails the test (never skips it) when node or the installed packages are
// missing.
func flexScript(t *testing.T) (node, script string) {
	t.Helper()
	const hint = "run `npm ci --prefix interop/js` from the repository root (node and npm must be installed, e.g. apt-get install nodejs npm)"
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH (%v): the pulsar-flex interop test needs Node.js; %s", err, hint)
	}
	dir, err := filepath.Abs("js")
	if err != nil {
		t.Fatal(err)
	}
	script = filepath.Join(dir, "flex.js")
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("the interop script is missing: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "pulsar-flex", "package.json")); err != nil {
		t.Fatalf("pulsar-flex is not installed in %s (%v); %s", filepath.Join(dir, "node_modules"), err, hint)
	}
	return node, script
}

// runFlex runs flex.js against srv in the given mode ("single" or
// "batch") and returns the lines it printed. It fails the test unless
// node exits 0.
func runFlex(t *testing.T, srv *pulsartest.Server, topic, mode string) []flexLine {
	t.Helper()
	node, script := flexScript(t)
	ctx, cancel := context.WithTimeout(context.Background(), flexDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, srv.URL(), topic, fmt.Sprint(flexCount), mode)
	cmd.Env = append(os.Environ(), fmt.Sprintf("FLEX_TIMEOUT_MS=%d", flexScriptBudget.Milliseconds()))
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if stderr.Len() > 0 {
		t.Logf("flex.js stderr:\n%s", stderr.Bytes())
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("node %s did not end within %v; stdout:\n%s", filepath.Base(script), flexDeadline, stdout.Bytes())
		}
		t.Fatalf("node %s %s %s: %v (want exit 0); stdout:\n%s", filepath.Base(script), srv.URL(), topic, err, stdout.Bytes())
	}
	var lines []flexLine
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var l flexLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("flex.js printed a line that is not JSON: %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// checkFlexOutput checks that the run consumed exactly message-0 ..
// message-(flexCount-1), in order and each once, ending with a summary
// that says all were produced and acknowledged. It returns the consumed
// messages.
func checkFlexOutput(t *testing.T, lines []flexLine, mode string) []flexLine {
	t.Helper()
	if len(lines) == 0 {
		t.Fatal("flex.js printed nothing")
	}
	last := lines[len(lines)-1]
	if last.Summary == nil {
		t.Fatalf("flex.js's last line is not its summary: %+v", last)
	}
	consumed := lines[:len(lines)-1]
	if len(consumed) != flexCount {
		t.Fatalf("flex.js consumed %d messages, want %d", len(consumed), flexCount)
	}
	for i, l := range consumed {
		want := fmt.Sprintf("message-%d", i)
		if l.Content == nil || l.MessageID == nil {
			t.Fatalf("line %d is not a consumed message: %+v", i, l)
		}
		if *l.Content != want {
			t.Fatalf("consumed message %d is %q, want %q", i, *l.Content, want)
		}
		if l.RedeliveryCount != 0 {
			t.Errorf("message %d has redelivery count %d, want 0", i, l.RedeliveryCount)
		}
	}
	s := last.Summary
	if s.Produced != flexCount || s.Consumed != flexCount || s.Acked != flexCount || s.Mode != mode {
		t.Fatalf("summary %+v, want %d produced, consumed and acked in mode %s", *s, flexCount, mode)
	}
	first, end := consumed[0], consumed[len(consumed)-1]
	t.Logf("pulsar-flex consumed %d messages in order: %q (%d:%d) .. %q (%d:%d); summary %+v",
		len(consumed), *first.Content, first.MessageID.LedgerID, first.MessageID.EntryID,
		*end.Content, end.MessageID.LedgerID, end.MessageID.EntryID, *s)
	return consumed
}

// checkFlexBacklog checks that the acknowledgements took effect: the
// subscription of flex.js (closed, not unsubscribed) has nothing left.
func checkFlexBacklog(t *testing.T, srv *pulsartest.Server, topic string) {
	t.Helper()
	backlog, ok := srv.Backlog(topic, flexSubscription)
	if !ok {
		t.Fatalf("no subscription %q on %s", flexSubscription, topic)
	}
	if backlog != 0 {
		t.Fatalf("subscription %q has a backlog of %d entries after every message was acknowledged", flexSubscription, backlog)
	}
}

// TestFlexSingle: pulsar-flex's Producer.sendMessage sends each message as
// its own SEND (no batching), so the broker stores flexCount entries whose
// payloads are the contents, and the consumer sees each with the id of
// its entry.
func TestFlexSingle(t *testing.T) {
	srv := pulsartest.NewTCP(t)
	topic := fullName(fmt.Sprintf("flex-single-%d", time.Now().UnixNano()))
	consumed := checkFlexOutput(t, runFlex(t, srv, topic, "single"), "single")

	stored := srv.Stored(topic)
	if len(stored) != flexCount {
		t.Fatalf("broker stored %d entries on %s, want %d", len(stored), topic, flexCount)
	}
	for i, m := range stored {
		want := fmt.Sprintf("message-%d", i)
		if string(m.Payload) != want {
			t.Fatalf("stored entry %d has payload %q, want %q", i, m.Payload, want)
		}
		var md pulsarpb.MessageMetadata
		if err := proto.Unmarshal(m.Metadata, &md); err != nil {
			t.Fatalf("stored entry %d: metadata: %v", i, err)
		}
		if md.NumMessagesInBatch != nil {
			t.Fatalf("stored entry %d is a batch of %d; sendMessage should not batch", i, md.GetNumMessagesInBatch())
		}
		id := consumed[i].MessageID
		if id.LedgerID != m.LedgerID || id.EntryID != m.EntryID {
			t.Fatalf("consumed message %d has id %d:%d, stored as %d:%d", i, id.LedgerID, id.EntryID, m.LedgerID, m.EntryID)
		}
	}
	// flex.js awaited an ACK_RESPONSE for each ACK before counting it, so
	// by now the server has handled all of them.
	if got := srv.Received(pulsarpb.BaseCommand_ACK); got < flexCount {
		t.Fatalf("server handled %d ACKs, want %d (one per message)", got, flexCount)
	}
	if got := srv.Received(pulsarpb.BaseCommand_SEND); got != flexCount {
		t.Fatalf("server handled %d SENDs, want %d", got, flexCount)
	}
	checkFlexBacklog(t, srv, topic)
}

// TestFlexBatch: pulsar-flex's Producer.sendBatch sends batches of 10 (one
// SEND with num_messages 10 and a batch payload each), so the broker
// stores flexCount/10 entries; decoding each batch gives the contents in
// order, and the consumer unpacks them the same way.
func TestFlexBatch(t *testing.T) {
	srv := pulsartest.NewTCP(t)
	topic := fullName(fmt.Sprintf("flex-batch-%d", time.Now().UnixNano()))
	consumed := checkFlexOutput(t, runFlex(t, srv, topic, "batch"), "batch")

	const perBatch = 10
	stored := srv.Stored(topic)
	if len(stored) != flexCount/perBatch {
		t.Fatalf("broker stored %d entries on %s, want %d batches", len(stored), topic, flexCount/perBatch)
	}
	n := 0
	for i, m := range stored {
		var md pulsarpb.MessageMetadata
		if err := proto.Unmarshal(m.Metadata, &md); err != nil {
			t.Fatalf("stored entry %d: metadata: %v", i, err)
		}
		if md.GetNumMessagesInBatch() != perBatch {
			t.Fatalf("stored entry %d has num_messages_in_batch %d, want %d", i, md.GetNumMessagesInBatch(), perBatch)
		}
		e, err := message.Decode(&frame.Payload{Metadata: m.Metadata, Data: m.Payload, ChecksumOK: true})
		if err != nil {
			t.Fatalf("stored entry %d: %v", i, err)
		}
		for j, p := range e.Messages {
			want := fmt.Sprintf("message-%d", n)
			if string(p.Payload) != want {
				t.Fatalf("stored entry %d message %d is %q, want %q", i, j, p.Payload, want)
			}
			if got := p.Properties["index"]; got != fmt.Sprint(n) {
				t.Fatalf("stored entry %d message %d has property index=%q, want %d", i, j, got, n)
			}
			id := consumed[n].MessageID
			if id.LedgerID != m.LedgerID || id.EntryID != m.EntryID {
				t.Fatalf("consumed message %d has id %d:%d, stored in entry %d:%d", n, id.LedgerID, id.EntryID, m.LedgerID, m.EntryID)
			}
			n++
		}
	}
	if n != flexCount {
		t.Fatalf("the stored batches hold %d messages, want %d", n, flexCount)
	}
	if got := srv.Received(pulsarpb.BaseCommand_ACK); got < flexCount/perBatch {
		t.Fatalf("server handled %d ACKs, want at least %d", got, flexCount/perBatch)
	}
	if got := srv.Received(pulsarpb.BaseCommand_SEND); got != flexCount/perBatch {
		t.Fatalf("server handled %d SENDs, want %d", got, flexCount/perBatch)
	}
	checkFlexBacklog(t, srv, topic)
}
