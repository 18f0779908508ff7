package frame_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// fuzzMaxFrameSize keeps the fuzzer's frames small; the limit logic is the
// same for any value.
const fuzzMaxFrameSize = 64 * 1024

// addGoldenSeeds adds the golden frames to f, as streams (withSize) or as
// bodies. The committed corpus in testdata/fuzz holds more seeds, among
// them invalid ones.
func addGoldenSeeds(f *testing.F, withSize bool) {
	for _, g := range goldenFrames {
		b := goldenHex(f, g.hex)
		if !withSize {
			b = b[4:]
		}
		f.Add(b)
	}
}

// checkReencode checks that a decoded frame encodes again (AppendCommand,
// or AppendPayload for a payload frame) to a frame that decodes to the same
// command, metadata and data, now with a good checksum.
func checkReencode(t *testing.T, fr *frame.Frame) {
	t.Helper()
	var out []byte
	var err error
	if fr.Payload == nil {
		out, err = frame.AppendCommand(nil, fr.Command)
	} else {
		out, err = frame.AppendPayload(nil, fr.Command, fr.Payload.Metadata, fr.Payload.Data)
	}
	if err != nil {
		t.Fatalf("re-encoding %v: %v", fr.Command, err)
	}
	n, ok := frame.TotalSize(out)
	if !ok || int(n) != len(out)-4 {
		t.Fatalf("re-encoded total size %d for %d bytes", n, len(out))
	}
	again, err := frame.Parse(out[4:])
	if err != nil {
		t.Fatalf("re-encoded frame does not decode: %v\n% x", err, out)
	}
	if !proto.Equal(fr.Command, again.Command) {
		t.Fatalf("command changed in a round trip:\nbefore %v\nafter  %v", fr.Command, again.Command)
	}
	if (fr.Payload == nil) != (again.Payload == nil) {
		t.Fatalf("payload presence changed in a round trip: %v, then %v", fr.Payload != nil, again.Payload != nil)
	}
	if fr.Payload == nil {
		return
	}
	p, q := fr.Payload, again.Payload
	if !q.HasChecksum || !q.ChecksumOK {
		t.Fatalf("re-encoded payload frame: HasChecksum %v, ChecksumOK %v", q.HasChecksum, q.ChecksumOK)
	}
	if q.BrokerEntryMetadata != nil {
		t.Fatalf("broker entry metadata appeared in a round trip")
	}
	if !bytes.Equal(p.Metadata, q.Metadata) || !bytes.Equal(p.Data, q.Data) {
		t.Fatalf("payload changed in a round trip:\nmetadata % x -> % x\ndata % x -> % x", p.Metadata, q.Metadata, p.Data, q.Data)
	}
}

// FuzzParse feeds arbitrary frame bodies to Parse: it must not panic, must
// fail only with ErrMalformed, and whatever it decodes must survive a round
// trip.
func FuzzParse(f *testing.F) {
	addGoldenSeeds(f, false)
	f.Fuzz(func(t *testing.T, body []byte) {
		fr, err := frame.Parse(body)
		if err != nil {
			if !errors.Is(err, frame.ErrMalformed) {
				t.Fatalf("Parse error %v is not ErrMalformed", err)
			}
			if fr != nil {
				t.Fatalf("Parse returned a frame with error %v", err)
			}
			return
		}
		if fr.Command == nil || fr.Command.Type == nil {
			t.Fatalf("Parse returned a command without a type: %v", fr.Command)
		}
		if p := fr.Payload; p != nil {
			if !p.HasChecksum && !p.ChecksumOK {
				t.Fatalf("ChecksumOK false without a checksum")
			}
			used := len(p.BrokerEntryMetadata) + len(p.Metadata) + len(p.Data)
			if used > len(body) {
				t.Fatalf("payload sections total %d bytes of a %d-byte body", used, len(body))
			}
		}
		checkReencode(t, fr)
	})
}

// readerOutcome is what a Reader made of a stream.
type readerOutcome struct {
	bodies [][]byte
	err    error
}

func readStream(t *testing.T, r io.Reader, limit int) readerOutcome {
	t.Helper()
	fr := frame.NewReader(r, fuzzMaxFrameSize)
	var out readerOutcome
	for i := 0; ; i++ {
		if i > limit {
			t.Fatalf("more than %d frames from %d bytes", i, limit)
		}
		b, err := fr.NextBody()
		if err != nil {
			out.err = err
			return out
		}
		if len(b) > fuzzMaxFrameSize || cap(b) > fuzzMaxFrameSize {
			t.Fatalf("body of len %d, cap %d over the %d limit", len(b), cap(b), fuzzMaxFrameSize)
		}
		out.bodies = append(out.bodies, b)
	}
}

// FuzzReader feeds arbitrary streams to a Reader, whole and one byte per
// read: it must not panic, must not hand out a body over the limit, must end
// with io.EOF, io.ErrUnexpectedEOF, ErrFrameTooLarge or ErrMalformed, must
// not depend on how the stream is split, and every frame it decodes must
// survive a round trip.
func FuzzReader(f *testing.F) {
	addGoldenSeeds(f, true)
	f.Add(hotPairsStream(f))
	f.Fuzz(func(t *testing.T, stream []byte) {
		// Every frame takes at least 8 bytes (both size fields).
		limit := len(stream) / 8
		whole := readStream(t, bytes.NewReader(stream), limit)
		split := readStream(t, iotest.OneByteReader(bytes.NewReader(stream)), limit)

		known := false
		for _, want := range []error{io.EOF, io.ErrUnexpectedEOF, frame.ErrFrameTooLarge, frame.ErrMalformed} {
			if errors.Is(whole.err, want) {
				known = true
				if !errors.Is(split.err, want) {
					t.Fatalf("whole stream ended with %v, split stream with %v", whole.err, split.err)
				}
			}
		}
		if !known {
			t.Fatalf("unexpected error %v", whole.err)
		}
		if len(whole.bodies) != len(split.bodies) {
			t.Fatalf("%d frames from the whole stream, %d from the split one", len(whole.bodies), len(split.bodies))
		}
		// Next is NextBody and Parse: it stops at the first frame that does
		// not parse, with that frame's error.
		nextReader := frame.NewReader(bytes.NewReader(stream), fuzzMaxFrameSize)
		for i := 0; ; i++ {
			fr, err := nextReader.Next()
			if i == len(whole.bodies) {
				if err == nil || err.Error() != whole.err.Error() {
					t.Fatalf("Next after the last body: %v, %v; NextBody: %v", fr, err, whole.err)
				}
				break
			}
			want, wantErr := frame.Parse(whole.bodies[i])
			if wantErr != nil {
				if !errors.Is(err, frame.ErrMalformed) {
					t.Fatalf("frame %d: Next returned %v where Parse failed with %v", i, err, wantErr)
				}
				break
			}
			if err != nil || !proto.Equal(want.Command, fr.Command) {
				t.Fatalf("frame %d: Next returned %v, %v; Parse %v", i, fr, err, want.Command)
			}
		}

		// A reader whose frames are released as soon as they are read
		// decodes the next ones into what it gets back (receipts and
		// messages return to it): nothing of a released frame may show
		// in a later one.
		releasing := frame.NewReader(bytes.NewReader(stream), fuzzMaxFrameSize)
		for i := range whole.bodies {
			if err := releasing.Fill(); err != nil {
				t.Fatalf("frame %d: Fill: %v", i, err)
			}
			got, err := releasing.Next()
			want, wantErr := frame.Parse(whole.bodies[i])
			if wantErr != nil {
				break
			}
			if err != nil || !proto.Equal(want.Command, got.Command) || !samePayload(want.Payload, got.Payload) {
				t.Fatalf("frame %d, others released: Next returned %v, %v; Parse %v", i, got, err, want.Command)
			}
			got.Release()
		}

		consumed := 0
		for i, b := range whole.bodies {
			if !bytes.Equal(b, split.bodies[i]) {
				t.Fatalf("frame %d differs between whole and split reads", i)
			}
			consumed += 4 + len(b)
			if !bytes.Equal(stream[consumed-len(b):consumed], b) {
				t.Fatalf("frame %d is not the stream's bytes", i)
			}
			fr, err := frame.Parse(b)
			if err != nil {
				if !errors.Is(err, frame.ErrMalformed) {
					t.Fatalf("Parse error %v is not ErrMalformed", err)
				}
				continue
			}
			checkReencode(t, fr)
		}
		if whole.err == io.EOF && consumed != len(stream) {
			t.Fatalf("io.EOF after %d of %d bytes", consumed, len(stream))
		}
	})
}

// samePayload reports whether two payloads read the same.
func samePayload(a, b *frame.Payload) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.HasChecksum == b.HasChecksum && a.ChecksumOK == b.ChecksumOK && a.Checksum == b.Checksum &&
		bytes.Equal(a.Metadata, b.Metadata) &&
		bytes.Equal(a.Data, b.Data) && bytes.Equal(a.BrokerEntryMetadata, b.BrokerEntryMetadata)
}

// hotPairsStream is two SEND_RECEIPTs and two MESSAGEs, the first of each
// with every optional field the hand decoders take and the second with
// none: a seed for the reuse of released frames (FuzzReader).
func hotPairsStream(f *testing.F) []byte {
	f.Helper()
	id := func(entry uint64, full bool) *pulsarpb.MessageIdData {
		m := &pulsarpb.MessageIdData{LedgerId: proto.Uint64(5), EntryId: proto.Uint64(entry)}
		if full {
			m.Partition, m.BatchIndex, m.BatchSize = proto.Int32(2), proto.Int32(3), proto.Int32(4)
		}
		return m
	}
	receipt := func(full bool) *pulsarpb.BaseCommand {
		r := &pulsarpb.CommandSendReceipt{ProducerId: proto.Uint64(1), SequenceId: proto.Uint64(9), MessageId: id(7, full)}
		if full {
			r.HighestSequenceId = proto.Uint64(12)
		}
		return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEND_RECEIPT.Enum(), SendReceipt: r}
	}
	message := func(full bool) *pulsarpb.BaseCommand {
		m := &pulsarpb.CommandMessage{ConsumerId: proto.Uint64(3), MessageId: id(8, full)}
		if full {
			m.RedeliveryCount, m.ConsumerEpoch = proto.Uint32(6), proto.Uint64(7)
		}
		return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_MESSAGE.Enum(), Message: m}
	}
	md := &pulsarpb.MessageMetadata{ProducerName: proto.String("p"), SequenceId: proto.Uint64(9), PublishTime: proto.Uint64(1)}
	var b []byte
	var err error
	for _, full := range []bool{true, false} {
		if b, err = frame.AppendCommand(b, receipt(full)); err != nil {
			f.Fatal(err)
		}
		if b, err = frame.AppendMessage(b, message(full), md, []byte("data")); err != nil {
			f.Fatal(err)
		}
	}
	return b
}
