package frame_test

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// varintField encodes a varint field.
func varintField(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(tag(num, protowire.VarintType), v)
}

// hotCommands are BaseCommands of the answers Parse decodes without the
// protobuf runtime, in the plain shape it takes and in shapes it leaves to
// proto.Unmarshal (plain is true for the first kind).
var hotCommands = []struct {
	name  string
	cmd   []byte
	plain bool
}{
	{"metadata", cat(varintField(1, 22), lenField(22, cat(varintField(1, 4), varintField(2, 123456), varintField(3, 0)))), true},
	{"metadata, inner first", cat(lenField(22, cat(varintField(2, 9), varintField(1, 0))), varintField(1, 22)), true},
	{"metadata failed", cat(varintField(1, 22), lenField(22, cat(varintField(2, 9), varintField(3, 1), varintField(4, 2), lenField(5, []byte("no such topic"))))), true},
	{"metadata empty", cat(varintField(1, 22), lenField(22, nil)), true},
	{"metadata, partitions over 32 bits", cat(varintField(1, 22), lenField(22, varintField(1, 1<<40|3))), true},
	{"metadata, unknown field", cat(varintField(1, 22), lenField(22, cat(varintField(2, 9), varintField(6, 1)))), false},
	{"metadata, field twice", cat(varintField(1, 22), lenField(22, cat(varintField(2, 9), varintField(2, 10)))), false},
	{"metadata, unnamed enum value", cat(varintField(1, 22), lenField(22, varintField(3, 7))), false},
	{"metadata, unnamed server error", cat(varintField(1, 22), lenField(22, varintField(4, 1000))), false},
	{"metadata, bad UTF-8", cat(varintField(1, 22), lenField(22, lenField(5, []byte{0xff, 0xfe}))), false},
	{"metadata, wire type", cat(varintField(1, 22), lenField(22, lenField(1, []byte{1}))), false},
	{"metadata, truncated", cat(varintField(1, 22), lenField(22, []byte{0x08})), false},
	{"metadata, type twice", cat(varintField(1, 22), varintField(1, 22), lenField(22, nil)), false},
	{"metadata, inner twice", cat(varintField(1, 22), lenField(22, varintField(1, 1)), lenField(22, varintField(2, 2))), false},
	{"type and inner differ", cat(varintField(1, 7), lenField(22, varintField(1, 1))), false},
	{"no type", lenField(22, varintField(1, 1)), false},
	{"receipt", cat(varintField(1, 7), lenField(7, cat(varintField(1, 1), varintField(2, 987654), lenField(3, cat(varintField(1, 17), varintField(2, 987654)))))), true},
	{"receipt, whole id", cat(varintField(1, 7), lenField(7, cat(varintField(4, 5), lenField(3, cat(varintField(1, 17), varintField(2, 3), varintField(3, 1<<64-1), varintField(4, 2), varintField(6, 10)))))), true},
	{"receipt, ack set", cat(varintField(1, 7), lenField(7, lenField(3, varintField(5, 1)))), false},
	{"receipt, chunked id", cat(varintField(1, 7), lenField(7, lenField(3, lenField(7, varintField(1, 1))))), false},
	{"receipt, id twice", cat(varintField(1, 7), lenField(7, cat(lenField(3, varintField(1, 1)), lenField(3, varintField(2, 2))))), false},
	{"other command", cat(varintField(1, 18), lenField(18, varintField(1, 1))), false},
}

// checkSameAsUnmarshal checks that Parse decodes a simple frame's body
// as proto.Unmarshal decodes its command.
func checkSameAsUnmarshal(t *testing.T, cmd []byte) {
	t.Helper()
	want := new(pulsarpb.BaseCommand)
	wantErr := proto.Unmarshal(cmd, want)
	if wantErr == nil && want.Type == nil {
		return // Parse refuses it, as a command without a type
	}
	f, err := frame.Parse(simpleBody(cmd))
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("Parse(% x): error %v, proto.Unmarshal's %v", cmd, err, wantErr)
	}
	if err == nil && !proto.Equal(f.Command, want) {
		t.Fatalf("Parse(% x) = %v, proto.Unmarshal gives %v", cmd, f.Command, want)
	}
}

// TestParseHotAnswers: the answers decoded without the protobuf runtime
// come out as proto.Unmarshal makes them, in one allocation (plus the
// string of an error message) when they are in the plain shape.
func TestParseHotAnswers(t *testing.T) {
	for _, c := range hotCommands {
		t.Run(c.name, func(t *testing.T) {
			checkSameAsUnmarshal(t, c.cmd)
			if !c.plain {
				return
			}
			b := simpleBody(c.cmd)
			f, _ := frame.Parse(b)
			want := 1.0
			if r := f.Command.GetPartitionMetadataResponse(); r != nil && r.Message != nil {
				want = 2
			}
			if got := testing.AllocsPerRun(100, func() { _, _ = frame.Parse(b) }); got != want {
				t.Fatalf("Parse made %v allocations, want %v", got, want)
			}
		})
	}
}

// FuzzParseHot compares Parse with proto.Unmarshal on commands shaped
// like the hot answers.
func FuzzParseHot(f *testing.F) {
	for _, c := range hotCommands {
		f.Add(c.cmd)
	}
	f.Fuzz(func(t *testing.T, cmd []byte) {
		checkSameAsUnmarshal(t, cmd)
	})
}
