package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// slotWidth is the width of a patchable varint: 10 bytes, the longest a
// uint64 takes. Protobuf decoders accept a varint padded with continuation
// bytes, so a template encoded once with a 10-byte placeholder can carry
// any id afterwards by overwriting those bytes in place: no marshalling
// and no size recomputation per frame.
const slotWidth = 10

// sentinel returns the placeholder for slot k: a value of at least 2^63,
// which protobuf encodes in exactly slotWidth bytes.
func sentinel(k int) uint64 { return 1<<63 | uint64(k)<<8 | 0x5a }

// putSlot writes v (< 2^63) into b[:slotWidth] as a padded varint.
func putSlot(b []byte, v uint64) {
	for i := 0; i < slotWidth-1; i++ {
		b[i] = byte(v>>(7*i))&0x7f | 0x80
	}
	b[slotWidth-1] = byte(v >> 63)
}

// template is a pre-encoded frame with varint slots to patch.
type template struct {
	buf   []byte
	slots []int // offsets of the slots in buf, in the order of their sentinels
	// The length prefixes of the protobuf messages that hold a slot, in
	// the order of their offsets, for short; out is its reused buffer.
	lens []lengthPrefix
	out  []byte
}

// lengthPrefix is the length varint of a message in a template's command
// that holds slots.
type lengthPrefix struct {
	at, width, n int  // its offset in buf, its width, and the length it holds
	slots        uint // the slots inside, a bit per slot
}

// newTemplate encodes a frame built by build, which must place
// sentinel(0) ... sentinel(n-1) in the fields to patch, and finds them.
func newTemplate(n int, build func(dst []byte) ([]byte, error)) (template, error) {
	buf, err := build(nil)
	if err != nil {
		return template{}, err
	}
	t := template{buf: buf}
	for k := range n {
		var want [slotWidth]byte
		binary.PutUvarint(want[:], sentinel(k))
		at := bytes.Index(buf, want[:])
		if at < 0 {
			return template{}, fmt.Errorf("bench: template slot %d not found", k)
		}
		t.slots = append(t.slots, at)
	}
	if len(buf) < 8 || n > bits.UintSize {
		return template{}, fmt.Errorf("bench: template of %d bytes with %d slots", len(buf), n)
	}
	cmdSize := int(binary.BigEndian.Uint32(buf[4:]))
	if !t.findLengths(8, 8+cmdSize) {
		return template{}, fmt.Errorf("bench: template command does not parse")
	}
	return t, nil
}

// findLengths records the length prefixes of the messages in
// buf[from:to], a protobuf message, that hold a slot, and of those
// nested in them.
func (t *template) findLengths(from, to int) bool {
	for i := from; i < to; {
		tag, n := binary.Uvarint(t.buf[i:to])
		if n <= 0 {
			return false
		}
		i += n
		switch tag & 7 {
		case 0:
			if _, n = binary.Uvarint(t.buf[i:to]); n <= 0 {
				return false
			}
			i += n
		case 2:
			size, n := binary.Uvarint(t.buf[i:to])
			if n <= 0 || size > uint64(to-i-n) {
				return false
			}
			start, end := i+n, i+n+int(size)
			var inside uint
			for k, at := range t.slots {
				if at >= start && at < end {
					inside |= 1 << k
				}
			}
			if inside != 0 {
				// Only a message holds a slot (its sentinel is a varint).
				// Under 128 bytes its length stays one byte as short
				// shrinks it, so no length around it changes width.
				if size >= 128 {
					return false
				}
				t.lens = append(t.lens, lengthPrefix{at: i, width: n, n: int(size), slots: inside})
				if !t.findLengths(start, end) {
					return false
				}
			}
			i = end
		case 1:
			i += 8
		case 5:
			i += 4
		default:
			return false
		}
	}
	return true
}

// short returns the frame with its slots set to vals, each in its shortest
// form, as a real broker writes varints, and the sizes and lengths that
// hold them adjusted: what set returns, without padding (a decoder that
// meets a padded varint takes its slow path, which one talking to a real
// broker rarely does). The result is valid until the next call.
func (t *template) short(vals ...uint64) []byte {
	var saved [bits.UintSize]int
	total := 0
	for k, v := range vals {
		saved[k] = slotWidth - protowire.SizeVarint(v)
		total += saved[k]
	}
	out := t.out[:0]
	from := 0
	li, si := 0, 0
	for li < len(t.lens) || si < len(vals) {
		if li < len(t.lens) && (si == len(vals) || t.lens[li].at < t.slots[si]) {
			l := t.lens[li]
			n := l.n
			for k := range vals {
				if l.slots&(1<<k) != 0 {
					n -= saved[k]
				}
			}
			out = append(out, t.buf[from:l.at]...)
			out = protowire.AppendVarint(out, uint64(n))
			from = l.at + l.width
			li++
			continue
		}
		out = append(out, t.buf[from:t.slots[si]]...)
		out = protowire.AppendVarint(out, vals[si])
		from = t.slots[si] + slotWidth
		si++
	}
	out = append(out, t.buf[from:]...)
	// Every slot is in the command: both sizes shrink by all they saved.
	binary.BigEndian.PutUint32(out, binary.BigEndian.Uint32(t.buf)-uint32(total))
	binary.BigEndian.PutUint32(out[4:], binary.BigEndian.Uint32(t.buf[4:])-uint32(total))
	t.out = out
	return out
}

// appendTo appends the template to dst with its slots set to vals.
func (t *template) appendTo(dst []byte, vals ...uint64) []byte {
	start := len(dst)
	dst = append(dst, t.buf...)
	for i, v := range vals {
		putSlot(dst[start+t.slots[i]:], v)
	}
	return dst
}

// set patches the slots of the template's own buffer in place.
func (t *template) set(vals ...uint64) []byte {
	for i, v := range vals {
		putSlot(t.buf[t.slots[i]:], v)
	}
	return t.buf
}

// commandTemplate is a template of a simple frame.
func commandTemplate(n int, cmd *pulsarpb.BaseCommand) (template, error) {
	return newTemplate(n, func(dst []byte) ([]byte, error) { return frame.AppendCommand(dst, cmd) })
}

// mustTemplate panics on an error: templates are built from fixed
// commands, so an error is a bug in this package.
func mustTemplate(t template, err error) template {
	if err != nil {
		panic(err)
	}
	return t
}

// scan walks the fields of one protobuf message, calling f with each
// field's number, wire type, varint value (wire type 0) and bytes (wire
// type 2). It stops early when f returns false, and reports whether the
// message was well formed up to there. It decodes what the benchmark
// server needs from hot commands without unmarshalling them.
func scan(b []byte, f func(num int, typ int, v uint64, sub []byte) bool) bool {
	for len(b) > 0 {
		num, typ, v, sub, n := field(b)
		if n == 0 {
			return false
		}
		b = b[n:]
		if !f(num, typ, v, sub) {
			return true
		}
	}
	return true
}

// field reads the first field of b: its number, wire type, varint value
// (wire type 0) or bytes (wire type 2), and how many bytes it took (0:
// malformed). One-byte tags and varints, nearly all of them, are read
// inline; a longer tag is decoded in place too (BaseCommand's sub-command
// fields from 16 on, PARTITIONED_METADATA_RESPONSE's 22 among them, have
// two-byte tags), a longer value through uvarintLong.
func field(b []byte) (num, typ int, v uint64, sub []byte, n int) {
	var tag uint64
	if len(b) > 0 && b[0] < 0x80 {
		tag, n = uint64(b[0]), 1
	} else if tag, n = binary.Uvarint(b); n <= 0 {
		return 0, 0, 0, nil, 0
	}
	num, typ = int(tag>>3), int(tag&7)
	switch typ {
	case 0, 2:
		m := 1
		if len(b) > n && b[n] < 0x80 {
			v = uint64(b[n])
		} else if v, m = uvarintLong(b[n:]); m <= 0 {
			return 0, 0, 0, nil, 0
		}
		n += m
		if typ == 0 {
			return num, typ, v, nil, n
		}
		if v > uint64(len(b)-n) {
			return 0, 0, 0, nil, 0
		}
		end := n + int(v)
		return num, typ, 0, b[n:end], end
	case 1:
		if len(b)-n < 8 {
			return 0, 0, 0, nil, 0
		}
		return num, typ, 0, nil, n + 8
	case 5:
		if len(b)-n < 4 {
			return 0, 0, 0, nil, 0
		}
		return num, typ, 0, nil, n + 4
	}
	return 0, 0, 0, nil, 0
}

// uvarintLong is binary.Uvarint, kept out of line: field reads the
// one-byte varints itself.
//
//go:noinline
func uvarintLong(b []byte) (uint64, int) { return binary.Uvarint(b) }

// varintField returns the varint field num of message b.
func varintField(b []byte, num int) (uint64, bool) {
	var out uint64
	var found bool
	scan(b, func(n, typ int, v uint64, _ []byte) bool {
		if n == num && typ == 0 {
			out, found = v, true
			return false
		}
		return true
	})
	return out, found
}

// peekCommand returns the type of a BaseCommand and its sub-command's
// bytes. In the Pulsar protocol a sub-command's field number in
// BaseCommand equals its type's number (SEND = 6 is field 6), which is
// what lets a scanner find it without the schema.
func peekCommand(cmd []byte) (pulsarpb.BaseCommand_Type, []byte, bool) {
	t, ok := varintField(cmd, 1)
	if !ok {
		return 0, nil, false
	}
	var sub []byte
	scan(cmd, func(n, typ int, _ uint64, s []byte) bool {
		if n == int(t) && typ == 2 {
			sub = s
			return false
		}
		return true
	})
	return pulsarpb.BaseCommand_Type(t), sub, true
}

// splitFrame returns the command bytes of a frame body (the bytes after
// the total size).
func splitFrame(body []byte) ([]byte, bool) {
	if len(body) < 4 {
		return nil, false
	}
	n := binary.BigEndian.Uint32(body)
	if uint64(n) > uint64(len(body)-4) {
		return nil, false
	}
	return body[4 : 4+n], true
}
