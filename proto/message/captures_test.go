package message_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/proto/message"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// capturesDir holds frames captured from a real broker and other clients,
// as testdata/captures/README.md describes.
const capturesDir = "testdata/captures"

// capture is a NAME.json: what NAME.frame must decode to.
type capture struct {
	Source              string           `json:"source"`
	Command             string           `json:"command"`
	Compression         string           `json:"compression"`
	Batched             bool             `json:"batched"`
	BrokerEntryMetadata bool             `json:"broker_entry_metadata"`
	Messages            []captureMessage `json:"messages"`
}

// captureMessage is one message a capture lists.
type captureMessage struct {
	Payload    string            `json:"payload"`
	Key        string            `json:"key,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
	EventTime  uint64            `json:"event_time,omitempty"`
}

// TestCaptures decodes every capture and checks it against its
// description. The captures come from the interop module's generator.
func TestCaptures(t *testing.T) {
	names, errs := checkCaptures(capturesDir)
	for _, err := range errs {
		t.Error(err)
	}
	t.Logf("%d captures: %s", len(names), strings.Join(names, ", "))
}

// checkCaptures checks each capture of dir; it fails for a .frame without
// its .json and the other way round.
func checkCaptures(dir string) (names []string, errs []error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, []error{err}
	}
	files := map[string]bool{}
	for _, e := range entries {
		files[e.Name()] = true
	}
	for _, f := range slices.Sorted(maps.Keys(files)) {
		name, ext := strings.TrimSuffix(f, filepath.Ext(f)), filepath.Ext(f)
		switch {
		case ext == ".json" && !files[name+".frame"]:
			errs = append(errs, fmt.Errorf("%s has no %s.frame", f, name))
		case ext != ".frame":
		case !files[name+".json"]:
			errs = append(errs, fmt.Errorf("%s has no %s.json", f, name))
		default:
			names = append(names, name)
			if err := checkCapture(filepath.Join(dir, name)); err != nil {
				errs = append(errs, fmt.Errorf("capture %s: %w", name, err))
			}
		}
	}
	return names, errs
}

// checkCapture decodes path.frame and compares it with path.json.
func checkCapture(path string) error {
	wire, err := os.ReadFile(path + ".frame")
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(path + ".json")
	if err != nil {
		return err
	}
	var want capture
	if err := json.Unmarshal(raw, &want); err != nil {
		return err
	}
	cmd, e, err := message.Decoder{}.DecodeFrame(wire)
	if err != nil {
		return err
	}
	var errs []error
	check := func(what string, got, want any) {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			errs = append(errs, fmt.Errorf("%s: got %v, want %v", what, got, want))
		}
	}
	check("command", cmd.GetType(), want.Command)
	check("compression", e.Compression, want.Compression)
	check("batched", e.Batched, want.Batched)
	check("broker entry metadata", e.BrokerEntry != nil, want.BrokerEntryMetadata)
	if len(e.Messages) != len(want.Messages) {
		return errors.Join(append(errs, fmt.Errorf("%d messages, want %d", len(e.Messages), len(want.Messages)))...)
	}
	for i, w := range want.Messages {
		m := e.Messages[i]
		check(fmt.Sprintf("message %d payload", i), string(m.Payload), w.Payload)
		check(fmt.Sprintf("message %d key", i), m.Key, w.Key)
		check(fmt.Sprintf("message %d properties", i), m.Properties, w.Properties) // fmt sorts map keys
		check(fmt.Sprintf("message %d event time", i), m.EventTime, w.EventTime)
	}
	return errors.Join(errs...)
}

func TestCaptureChecker(t *testing.T) {
	// The checker on a frame of this package's encoder: it passes on the
	// right description and fails on each wrong field and on a lone file.
	dir := t.TempDir()
	enc := &message.Encoder{ProducerName: "p", Compression: pulsarpb.CompressionType_ZSTD}
	send, err := enc.AppendBatch(nil, 1, []message.Message{
		{Payload: []byte("one"), Key: "k", Properties: map[string]string{"a": "1"}, EventTime: 5},
		{Payload: []byte("two")},
	})
	require.NoError(t, err)
	wire := asMessage(t, send, &pulsarpb.BrokerEntryMetadata{Index: new(uint64(3))})
	right := capture{
		Source: "this package's encoder", Command: "MESSAGE", Compression: "ZSTD", Batched: true, BrokerEntryMetadata: true,
		Messages: []captureMessage{
			{Payload: "one", Key: "k", Properties: map[string]string{"a": "1"}, EventTime: 5},
			{Payload: "two"},
		},
	}
	write := func(dir, name string, c capture) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".frame"), wire, 0o644))
		raw, err := json.Marshal(c)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".json"), raw, 0o644))
	}
	write(dir, "right", right)
	names, errs := checkCaptures(dir)
	assert.Equal(t, []string{"right"}, names)
	assert.Empty(t, errs)

	wrongs := map[string]func(c *capture){
		"command":     func(c *capture) { c.Command = "SEND" },
		"compression": func(c *capture) { c.Compression = "LZ4" },
		"batched":     func(c *capture) { c.Batched = false },
		"bem":         func(c *capture) { c.BrokerEntryMetadata = false },
		"count":       func(c *capture) { c.Messages = c.Messages[:1] },
		"payload":     func(c *capture) { c.Messages[1].Payload = "TWO" },
		"key":         func(c *capture) { c.Messages[1].Key = "k" },
		"properties":  func(c *capture) { c.Messages[0].Properties = map[string]string{"a": "2"} },
		"event_time":  func(c *capture) { c.Messages[0].EventTime = 6 },
	}
	for name, wrong := range wrongs {
		c := right
		c.Messages = slices.Clone(right.Messages)
		wrong(&c)
		d := t.TempDir()
		write(d, name, c)
		_, errs := checkCaptures(d)
		assert.Len(t, errs, 1, name)
	}

	lone := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(lone, "a.frame"), wire, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(lone, "b.json"), []byte("{}"), 0o644))
	_, errs = checkCaptures(lone)
	assert.Len(t, errs, 2, "a .frame without .json and a .json without .frame")
}
