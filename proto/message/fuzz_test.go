package message_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/message"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// fuzzMaxSize keeps what the fuzzer's frames may decompress to small; the
// limit logic is the same for any value.
const fuzzMaxSize = 1 << 20

// FuzzDecodeFrame decodes arbitrary frames. It never panics, fails only
// with the package's sentinels, splits a batch into exactly the messages
// it announces, and a decoded entry encodes again to one that decodes to
// the same messages. Seeds: this package's encoder with each compression,
// single and batched, as a SEND and as a MESSAGE with broker entry
// metadata, and every capture in testdata/captures.
func FuzzDecodeFrame(f *testing.F) {
	bem := &pulsarpb.BrokerEntryMetadata{BrokerTimestamp: new(uint64(1)), Index: new(uint64(2))}
	for _, c := range compressions {
		enc := &message.Encoder{ProducerName: "fuzz", Compression: c}
		m := fullMessage()
		m.Payload = text(60)
		single, err := enc.AppendSend(nil, 1, &m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(single)
		msgs := batchMessages()
		for i := range msgs {
			// Small seeds keep the fuzzer's minimizing short.
			msgs[i].Payload = msgs[i].Payload[:min(len(msgs[i].Payload), 20)]
		}
		batched, err := enc.AppendBatch(nil, 1, msgs)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(batched)
		f.Add(asMessage(f, batched, bem))
	}
	captures, _ := filepath.Glob(filepath.Join(capturesDir, "*.frame"))
	for _, path := range captures {
		wire, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wire)
	}
	sentinels := []error{message.ErrMalformed, message.ErrChecksum, message.ErrTooLarge, message.ErrCorrupt,
		message.ErrUnsupportedCompression, message.ErrEncrypted, message.ErrNoPayload}
	f.Fuzz(func(t *testing.T, wire []byte) {
		// Most mutations break the CRC32C; decode once as is and once
		// with it right, to reach what follows the checksum.
		fuzzDecode(t, wire, sentinels)
		if fixed, ok := withGoodChecksum(wire); ok {
			fuzzDecode(t, fixed, sentinels)
		}
	})
}

// fuzzDecode decodes wire and checks what FuzzDecodeFrame promises.
func fuzzDecode(t *testing.T, wire []byte, sentinels []error) {
	d := message.Decoder{MaxSize: fuzzMaxSize}
	_, e, err := d.DecodeFrame(wire)
	if err != nil {
		if e != nil {
			t.Fatalf("an entry with the error %v", err)
		}
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("an error that is no sentinel: %v", err)
	}
	n := 1
	if e.Batched {
		n = int(e.Metadata.GetNumMessagesInBatch())
	}
	if len(e.Messages) != n {
		t.Fatalf("%d messages, want %d", len(e.Messages), n)
	}
	total := 0
	for _, m := range e.Messages {
		total += len(m.Payload)
	}
	if total > len(wire)+fuzzMaxSize {
		t.Fatalf("%d bytes of payload from a frame of %d", total, len(wire))
	}
	checkReencode(t, e)
}

// withGoodChecksum returns a copy of wire with the CRC32C of its payload
// section recomputed, and false when it has none to fix.
func withGoodChecksum(wire []byte) ([]byte, bool) {
	if len(wire) < 8 {
		return nil, false
	}
	at := 8 + uint64(binary.BigEndian.Uint32(wire[4:]))
	if at+6 <= uint64(len(wire)) && binary.BigEndian.Uint16(wire[at:]) == frame.MagicBrokerEntryMetadata {
		at += 6 + uint64(binary.BigEndian.Uint32(wire[at+2:]))
	}
	if at+6 > uint64(len(wire)) || binary.BigEndian.Uint16(wire[at:]) != frame.MagicChecksum {
		return nil, false
	}
	fixed := bytes.Clone(wire)
	binary.BigEndian.PutUint32(fixed[at+2:], frame.Checksum(fixed[at+6:]))
	return fixed, true
}

// checkReencode encodes e's messages again, with its producer name and
// compression, and checks they decode to the same messages. Chunks
// (which the encoder sends as they are) and messages without a publish
// time (which the encoder sets) are left out.
func checkReencode(t *testing.T, e *message.Entry) {
	t.Helper()
	if len(e.Messages) == 0 || e.Messages[0].Chunk != (message.Chunk{}) || e.Messages[0].PublishTime == 0 {
		return
	}
	enc := &message.Encoder{ProducerName: e.Metadata.GetProducerName(), Compression: e.Compression}
	var wire []byte
	var err error
	if e.Batched {
		wire, err = enc.AppendBatch(nil, 1, e.Messages)
	} else {
		wire, err = enc.AppendSend(nil, 1, &e.Messages[0])
	}
	if err != nil {
		t.Fatalf("re-encoding: %v", err)
	}
	_, again, err := message.Decoder{MaxSize: fuzzMaxSize}.DecodeFrame(wire)
	if err != nil {
		t.Fatalf("the re-encoded entry does not decode: %v", err)
	}
	if again.Batched != e.Batched || len(again.Messages) != len(e.Messages) {
		t.Fatalf("re-encoded: batched %v with %d messages, was %v with %d", again.Batched, len(again.Messages), e.Batched, len(e.Messages))
	}
	for i := range e.Messages {
		want, got := comparable(e.Messages[i], e.Batched), comparable(again.Messages[i], e.Batched)
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("message %d changed in a round trip:\nbefore %+v\nafter  %+v", i, want, got)
		}
	}
}

// comparable returns m without what an Encoder does not send: an empty
// slice or map is nil, a batch's deliver-at time and compaction mark are
// not sent, nor is a key's base64 flag without a key.
func comparable(m message.Message, batched bool) message.Message {
	if len(m.Payload) == 0 {
		m.Payload = nil
	}
	if len(m.OrderingKey) == 0 && m.OrderingKey != nil {
		m.OrderingKey = []byte{}
	}
	if len(m.SchemaVersion) == 0 && m.SchemaVersion != nil {
		m.SchemaVersion = []byte{}
	}
	if len(m.Properties) == 0 {
		m.Properties = nil
	}
	if m.Key == "" {
		m.KeyB64Encoded = false
	}
	if batched {
		m.DeliverAt = 0
	}
	m.CompactedOut = false
	return m
}
