package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// frameLogger returns the observer of "serve --verbose": one line per
// frame read or sent, to w, such as
//
//	conn 3 in LOOKUP request_id=7
//	conn 3 out LOOKUP_RESPONSE request_id=7
//	conn 4 out MESSAGE consumer_id=1 message_id=1:0 payload
//
// with the connection's id (numbered per broker), the direction, the
// command type and the ids that say what the frame is about.
func frameLogger(w io.Writer) func(pulsartest.FrameRecord) {
	var mu sync.Mutex // brokers of a cluster log concurrently
	return func(r pulsartest.FrameRecord) {
		line := frameLine(r)
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(w, line)
	}
}

// frameLine is the line of one frame.
func frameLine(r pulsartest.FrameRecord) string {
	var b strings.Builder
	fmt.Fprintf(&b, "conn %d %s ", r.Conn, r.Dir)
	if r.Command == nil {
		b.WriteString("(raw bytes)")
		return b.String()
	}
	b.WriteString(r.Type.String())
	writeKeyIDs(&b, r.Command.ProtoReflect())
	if r.Payload {
		b.WriteString(" payload")
	}
	return b.String()
}

// writeKeyIDs appends the key ids of the command carried by base (its one
// set field besides the type): every integer field whose name ends in
// "_id" or is "sequence_id", and message ids as ledger:entry.
func writeKeyIDs(b *strings.Builder, base protoreflect.Message) {
	base.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsList() {
			return true
		}
		v.Message().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			name := string(fd.Name())
			switch {
			case fd.IsList() && fd.Kind() == protoreflect.MessageKind && strings.HasSuffix(name, "message_id"):
				ids := make([]string, v.List().Len())
				for i := range ids {
					ids[i] = messageID(v.List().Get(i).Message())
				}
				fmt.Fprintf(b, " %s=%s", name, strings.Join(ids, ","))
			case fd.IsList() || fd.IsMap():
			case fd.Kind() == protoreflect.MessageKind && strings.HasSuffix(name, "message_id"):
				fmt.Fprintf(b, " %s=%s", name, messageID(v.Message()))
			case isInteger(fd.Kind()) && strings.HasSuffix(name, "_id"):
				fmt.Fprintf(b, " %s=%s", name, intString(fd.Kind(), v))
			}
			return true
		})
		return true
	})
}

// messageID formats a MessageIdData as ledger:entry (with :partition and
// [batch_index] when set).
func messageID(m protoreflect.Message) string {
	get := func(name protoreflect.Name) (protoreflect.Value, bool) {
		fd := m.Descriptor().Fields().ByName(name)
		if fd == nil || !m.Has(fd) {
			return protoreflect.Value{}, false
		}
		return m.Get(fd), true
	}
	var s strings.Builder
	l, _ := get("ledgerId")
	e, _ := get("entryId")
	fmt.Fprintf(&s, "%d:%d", l.Uint(), e.Uint())
	if p, ok := get("partition"); ok && p.Int() >= 0 {
		fmt.Fprintf(&s, ":p%d", p.Int())
	}
	if bi, ok := get("batch_index"); ok && bi.Int() >= 0 {
		fmt.Fprintf(&s, "[%d]", bi.Int())
	}
	return s.String()
}

func isInteger(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.Int32Kind, protoreflect.Int64Kind, protoreflect.Sint32Kind, protoreflect.Sint64Kind,
		protoreflect.Sfixed32Kind, protoreflect.Sfixed64Kind,
		protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Fixed32Kind, protoreflect.Fixed64Kind:
		return true
	}
	return false
}

// intString formats an integer field; -1 as an unsigned 64-bit value (a
// broker's "none") reads as -1.
func intString(k protoreflect.Kind, v protoreflect.Value) string {
	switch k {
	case protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Fixed32Kind, protoreflect.Fixed64Kind:
		if v.Uint() == math.MaxUint64 {
			return "-1"
		}
		return strconv.FormatUint(v.Uint(), 10)
	}
	return strconv.FormatInt(v.Int(), 10)
}

// parseSize reads a byte count: a plain number of bytes, or a number
// followed by K, KB, KiB, M, MB, MiB, G, GB or GiB (all binary multiples,
// as a broker's sizes are: 5MiB, 5M and 5242880 are the same).
func parseSize(s string) (int, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	upper := strings.ToUpper(t)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(upper, u.suffix) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive size (bytes, or a number with K, M or G)", s)
	}
	// The frame size field is 32 bits: a message must leave room for the
	// frame around it.
	if n > (math.MaxInt32-(10<<10))/mult {
		return 0, fmt.Errorf("%q is over the protocol's 2 GiB frame limit", s)
	}
	return int(n * mult), nil
}
