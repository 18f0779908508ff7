package fidelity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Transcript is what one run of a scenario observed, normalised.
type Transcript struct {
	// Scenario is the scenario's name.
	Scenario string `json:"scenario"`
	// Events are the commands sent and the frames received, in order.
	Events []Event `json:"events"`
}

// Directions of an Event.
const (
	// Sent is a command the scenario wrote.
	Sent = "send"
	// Received is a frame the target wrote.
	Received = "recv"
)

// Types of received Events that are not commands.
const (
	// Closed: the target closed the connection.
	Closed = "CLOSED"
	// Timeout: the answer the step waited for did not come in time.
	Timeout = "TIMEOUT"
	// Nothing: no frame came while the step watched for none.
	Nothing = "NOTHING"
)

// Event is one command sent or one frame received.
type Event struct {
	// Step is the scenario's label of the step the event belongs to.
	Step string `json:"step"`
	// Dir is Sent or Received.
	Dir string `json:"dir"`
	// Type is the command's type name (BaseCommand.Type), or Closed,
	// Timeout or Nothing.
	Type string `json:"type"`
	// Fields are the received command's fields, normalised: its
	// sub-command in protobuf JSON form with the proto field names, and
	// for a payload frame "payload" and "metadata". Sent events carry
	// none.
	Fields map[string]any `json:"fields,omitempty"`
}

// Placeholders the normaliser puts in place of values that differ between
// runs.
const (
	phServerVersion = "<server_version>"
	phTime          = "<time>"
	phGenerated     = "<generated>"
	phText          = "<text>"
	phUnset         = "<unset>"
	phRun           = "{run}"
	phURL           = "{service_url}"
	phURLTLS        = "{service_url_tls}"
)

// normaliser turns received commands into Event fields. It numbers ledger
// ids in their order of first appearance (L0, L1, …), so that the same
// scenario gives the same transcript on any broker.
type normaliser struct {
	run          string
	url, urlTLS  string
	ledgers      map[string]string
	ownProducers map[string]bool
}

func newNormaliser(run, url, urlTLS string) *normaliser {
	return &normaliser{run: run, url: url, urlTLS: urlTLS, ledgers: map[string]string{}, ownProducers: map[string]bool{}}
}

// fields normalises a received frame.
func (n *normaliser) fields(f *frame.Frame) (map[string]any, error) {
	cmd := proto.Clone(f.Command).(*pulsarpb.BaseCommand)
	cmd.Type = nil
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	var all map[string]any
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	out := map[string]any{}
	// The sub-command is the only field left: its fields go at the top.
	for _, v := range all {
		if m, ok := v.(map[string]any); ok {
			for k, x := range m {
				out[k] = n.value(k, x)
			}
		}
	}
	if f.Command.GetType() == pulsarpb.BaseCommand_SEND_RECEIPT {
		// For a SEND without highest_sequence_id (the scenarios send
		// none), a broker answers what its pooled publish context holds:
		// -1 once recycled, 0 when freshly made (after a restart).
		if h := out["highest_sequence_id"]; h == "-1" || h == "0" {
			out["highest_sequence_id"] = phUnset
		}
	}
	if f.Payload != nil {
		out["payload"] = n.value("payload", string(f.Payload.Data))
		if len(f.Payload.Data) > 256 {
			out["payload"] = fmt.Sprintf("<%d bytes>", len(f.Payload.Data))
		}
		md, err := f.Payload.DecodeMetadata()
		if err != nil {
			return nil, err
		}
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(md)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		out["metadata"] = n.value("metadata", m)
		out["checksum_ok"] = f.Payload.ChecksumOK
	}
	return out, nil
}

// The -1 and Long.MAX_VALUE of a Java broker, as protobuf JSON writes
// them in 64-bit fields.
const (
	jsonMinusOne = "18446744073709551615"
	jsonLongMax  = "9223372036854775807"
)

// value normalises the value of field key.
func (n *normaliser) value(key string, v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, y := range x {
			m[k] = n.value(k, y)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, y := range x {
			out[i] = n.value(key, y)
		}
		return out
	case string:
		switch key {
		case "server_version":
			return phServerVersion
		case "publish_time", "event_time", "broker_timestamp", "message_publish_time", "deliver_at_time":
			return phTime
		case "message", "error_message":
			if x != "" {
				return phText
			}
			return x
		case "producer_name":
			if !n.ownProducers[x] {
				return phGenerated
			}
			return x
		case "ledgerId", "ledger_id":
			return n.ledger(x)
		}
		switch x {
		case jsonMinusOne:
			return "-1"
		case jsonLongMax:
			return "max"
		}
		if n.urlTLS != "" {
			x = strings.ReplaceAll(x, n.urlTLS, phURLTLS)
		}
		if n.url != "" {
			x = strings.ReplaceAll(x, n.url, phURL)
		}
		return strings.ReplaceAll(x, n.run, phRun)
	}
	return v
}

// ledger names a ledger id by its order of first appearance.
func (n *normaliser) ledger(id string) string {
	switch id {
	case jsonMinusOne:
		return "-1"
	case jsonLongMax:
		return "max"
	}
	if l, ok := n.ledgers[id]; ok {
		return l
	}
	l := "L" + strconv.Itoa(len(n.ledgers))
	n.ledgers[id] = l
	return l
}

// flatten lists the leaves of fields by path ("message_id.entry_id",
// "message_ids[1].entry_id"), each as its JSON text.
func flatten(fields map[string]any) map[string]string {
	out := map[string]string{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, y := range x {
				p := k
				if path != "" {
					p = path + "." + k
				}
				walk(p, y)
			}
		case []any:
			for i, y := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), y)
			}
		default:
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(x)
			out[path] = strings.TrimSuffix(b.String(), "\n")
		}
	}
	walk("", fields)
	return out
}

// sortedKeys returns the keys of m in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Path is the file of scenario's transcript in dir.
func Path(dir, scenario string) string { return filepath.Join(dir, scenario+".json") }

// Load reads the transcript of scenario from dir.
func Load(dir, scenario string) (Transcript, error) {
	var tr Transcript
	b, err := os.ReadFile(Path(dir, scenario))
	if err != nil {
		return tr, err
	}
	err = json.Unmarshal(b, &tr)
	return tr, err
}

// Save writes tr to dir, indented, one file per scenario (placeholders
// such as <text> written as they are, not escaped).
func Save(dir string, tr Transcript) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(tr); err != nil {
		return err
	}
	return os.WriteFile(Path(dir, tr.Scenario), b.Bytes(), 0o644)
}

// steps lists the step labels of events in order of first appearance.
func steps(events []Event) []string {
	var out []string
	for _, e := range events {
		if !slices.Contains(out, e.Step) {
			out = append(out, e.Step)
		}
	}
	return out
}
