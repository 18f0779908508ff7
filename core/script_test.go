package core_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/*.txt transcripts")

// TestScripts runs the conversations in testdata/*.txt, in the spirit of
// etcd's datadriven tests. A transcript is a sequence of
//
//	directive args...
//	----
//	expected output, one line per frame written or effect asked for
//
// blocks separated by blank lines; lines starting with # are comments.
// Commands are written as their type followed by the sub-command's fields
// in protobuf text format (`LOOKUP topic:"t" request_id:1`). Times are
// relative to the start of the script. Run with -rewrite to regenerate the
// expected output after a deliberate change, and review the diff.
//
// Directives:
//
//	new [address=A] [auth=METHOD] [proxy=URL] [connect-timeout=D] [op-timeout=D] [keepalive=D]
//	start | conn-up [gen=N] | conn-failed [gen=N] err=TEXT
//	auth [initial] [data=TEXT] [err=TEXT]     (AuthResult for the current generation)
//	recv [gen=N] TYPE fields...               (a frame from the broker)
//	recv-message consumer=N entry=N payload=TEXT [corrupt]
//	advance D                                 (Tick at every deadline on the way)
//	request NAME TYPE fields...               (a request whose Waiter is called NAME)
//	send TYPE fields... | cancel NAME
//	add-producer ID | add-consumer ID | remove-producer ID [NAME] | remove-consumer ID [NAME]
//	begin-close | finish-close | status
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runScript(t, file)
		})
	}
}

type scriptBlock struct {
	line      int
	lead      []string // comments and blank lines before the directive
	directive string
	want      []string
}

func parseScript(t *testing.T, text string) (blocks []scriptBlock, tail []string) {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	var lead []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			lead = append(lead, l)
			continue
		}
		b := scriptBlock{line: i + 1, lead: lead, directive: l}
		lead = nil
		i++
		require.Less(t, i, len(lines), "line %d: directive without ----", b.line)
		require.Equal(t, "----", lines[i], "line %d: directive must be followed by ----", b.line)
		for i+1 < len(lines) && strings.TrimSpace(lines[i+1]) != "" {
			i++
			b.want = append(b.want, lines[i])
		}
		blocks = append(blocks, b)
	}
	return blocks, lead
}

func runScript(t *testing.T, file string) {
	text, err := os.ReadFile(file)
	require.NoError(t, err)
	blocks, tail := parseScript(t, string(text))
	s := &script{t: t}
	var out strings.Builder
	for _, b := range blocks {
		got := s.run(b)
		for _, l := range b.lead {
			out.WriteString(l + "\n")
		}
		out.WriteString(b.directive + "\n----\n")
		for _, l := range got {
			out.WriteString(l + "\n")
		}
		if !*rewrite {
			assert.Equal(t, strings.Join(b.want, "\n"), strings.Join(got, "\n"), "%s:%d: %s", file, b.line, b.directive)
		}
	}
	for _, l := range tail {
		out.WriteString(l + "\n")
	}
	if *rewrite {
		require.NoError(t, os.WriteFile(file, []byte(out.String()), 0o644))
	}
}

// script is the state of one transcript.
type script struct {
	t       *testing.T
	c       *core.Conn
	now     time.Time
	waiters map[string]*namedWaiter
	ids     map[string]uint64
	nclose  int
}

type namedWaiter struct{ name string }

func (*namedWaiter) Done(*pulsarpb.BaseCommand, error) {}

type namedHandler struct{ name string }

func (*namedHandler) HandlePush(core.Push) {}

func (s *script) run(b scriptBlock) []string {
	t := s.t
	word, rest, _ := strings.Cut(b.directive, " ")
	args := tokenize(t, rest)
	if word != "new" {
		require.NotNil(t, s.c, "line %d: the script must begin with new", b.line)
	}
	var extra []string
	switch word {
	case "new":
		cfg := core.Config{Address: "broker.test:6650", ClientVersion: "pulsarconn-test/1.0"}
		for _, a := range args {
			k, v, _ := strings.Cut(a, "=")
			switch k {
			case "address":
				cfg.Address = v
			case "auth":
				cfg.AuthMethod = v
			case "proxy":
				cfg.ProxyToBrokerURL = v
			case "connect-timeout":
				cfg.ConnectTimeout = s.duration(v)
			case "op-timeout":
				cfg.OperationTimeout = s.duration(v)
			case "keepalive":
				cfg.KeepAliveInterval = s.duration(v)
			default:
				t.Fatalf("line %d: unknown argument %q", b.line, a)
			}
		}
		s.c = core.New(cfg)
		s.now = t0
		s.waiters = map[string]*namedWaiter{}
		s.ids = map[string]uint64{}
	case "start":
		s.c.Start(s.now)
	case "conn-up":
		s.c.ConnUp(s.now, s.gen(args))
	case "conn-failed":
		s.c.ConnFailed(s.now, s.gen(args), fmt.Errorf("%s", arg(args, "err")))
	case "auth":
		var err error
		if e := arg(args, "err"); e != "" {
			err = fmt.Errorf("%s", e)
		}
		s.c.AuthResult(s.now, s.c.Gen(), slices.Contains(args, "initial"), []byte(arg(args, "data")), err)
	case "recv":
		gen := s.c.Gen()
		if strings.HasPrefix(rest, "gen=") {
			g, r, _ := strings.Cut(rest, " ")
			gen = s.gen([]string{g})
			rest = r
		}
		b, err := frame.AppendCommand(nil, s.command(rest))
		require.NoError(t, err)
		s.recvBytes(gen, b)
	case "recv-message":
		cid, _ := strconv.ParseUint(arg(args, "consumer"), 10, 64)
		entry, _ := strconv.ParseUint(arg(args, "entry"), 10, 64)
		b := messageFrame(t, cid, entry, arg(args, "payload"))
		if slices.Contains(args, "corrupt") {
			b[len(b)-1] ^= 0xff
		}
		s.recvBytes(s.c.Gen(), b)
	case "advance":
		require.Len(t, args, 1)
		end := s.now.Add(s.duration(args[0]))
		var out []string
		for {
			dl := s.c.NextDeadline()
			if dl.IsZero() || dl.After(end) {
				break
			}
			if dl.After(s.now) {
				s.now = dl
			}
			s.c.Tick(s.now)
			if got := s.collect(); len(got) > 0 {
				out = append(out, "at "+s.rel(s.now)+":")
				for _, l := range got {
					out = append(out, "  "+l)
				}
			}
		}
		s.now = end
		return out
	case "request":
		name, spec, _ := strings.Cut(rest, " ")
		w := &namedWaiter{name: name}
		id, err := s.c.Request(s.now, s.command(spec), w)
		if err != nil {
			extra = append(extra, "error: "+err.Error())
		} else {
			s.waiters[name] = w
			s.ids[name] = id
			extra = append(extra, fmt.Sprintf("request id %d", id))
		}
	case "send":
		if err := s.c.Send(s.now, s.command(rest)); err != nil {
			extra = append(extra, "error: "+err.Error())
		}
	case "cancel":
		extra = append(extra, fmt.Sprintf("cancelled: %v", s.c.Cancel(s.ids[args[0]])))
	case "add-producer", "add-consumer":
		id, err := strconv.ParseUint(args[0], 10, 64)
		require.NoError(t, err)
		kind := strings.TrimPrefix(word, "add-")
		h := &namedHandler{name: fmt.Sprintf("%s %d", kind, id)}
		add := s.c.AddConsumer
		if kind == "producer" {
			add = s.c.AddProducer
		}
		if err := add(id, h); err != nil {
			extra = append(extra, "error: "+err.Error())
		}
	case "remove-producer", "remove-consumer":
		id, err := strconv.ParseUint(args[0], 10, 64)
		require.NoError(t, err)
		var w core.Waiter
		if len(args) > 1 {
			nw := &namedWaiter{name: args[1]}
			s.waiters[args[1]] = nw
			w = nw
		}
		remove := s.c.RemoveConsumer
		if word == "remove-producer" {
			remove = s.c.RemoveProducer
		}
		extra = append(extra, fmt.Sprintf("sent: %v", remove(s.now, id, w)))
	case "begin-close":
		n := s.c.BeginClose(s.now, func(id uint64) core.Waiter {
			s.nclose++
			return &namedWaiter{name: fmt.Sprintf("close-%d", s.nclose)}
		})
		extra = append(extra, fmt.Sprintf("closes sent: %d", n))
	case "finish-close":
		s.c.FinishClose(s.now)
	case "status":
		st := s.c.Stats()
		return []string{
			fmt.Sprintf("state=%v gen=%d pending=%d next=%s", s.c.State(), s.c.Gen(), s.c.Pending(), s.rel(s.c.NextDeadline())),
			fmt.Sprintf("producers=%v consumers=%v", s.c.Producers(), s.c.Consumers()),
			fmt.Sprintf("stats: unknown-commands=%d unknown-requests=%d unknown-producers=%d unknown-consumers=%d bad-checksums=%d reconnects=%d handshake-failures=%d",
				st.UnknownCommands, st.UnknownRequests, st.UnknownProducers, st.UnknownConsumers, st.BadChecksums, st.Reconnects, st.HandshakeFailures),
		}
	default:
		t.Fatalf("line %d: unknown directive %q", b.line, word)
	}
	return append(extra, s.collect()...)
}

func (s *script) recvBytes(gen uint64, b []byte) {
	f, err := frame.Parse(b[4:])
	require.NoError(s.t, err)
	s.c.HandleFrame(s.now, gen, f)
}

// collect renders what the last input wrote and asked for.
func (s *script) collect() []string {
	var out []string
	for _, cmd := range decodeAll(s.t, s.c.Output(nil)) {
		out = append(out, "write "+formatCommand(cmd))
	}
	for _, e := range s.c.Effects(nil) {
		out = append(out, s.formatEffect(e))
	}
	return out
}

func (s *script) formatEffect(e core.Effect) string {
	switch e.Kind {
	case core.EffectDial:
		return fmt.Sprintf("dial gen=%d address=%s deadline=%s", e.Gen, e.Address, s.rel(e.Deadline))
	case core.EffectClose:
		return fmt.Sprintf("close gen=%d err=%q", e.Gen, errText(e.Err))
	case core.EffectAuth:
		if e.Initial {
			return fmt.Sprintf("auth gen=%d initial", e.Gen)
		}
		return fmt.Sprintf("auth gen=%d challenge=%q", e.Gen, e.Challenge)
	case core.EffectComplete:
		name := "?"
		if w, ok := e.Waiter.(*namedWaiter); ok {
			name = w.name
		} else if e.Waiter != nil {
			name = fmt.Sprintf("%T", e.Waiter)
		}
		if e.Err != nil {
			return fmt.Sprintf("complete %s err=%q", name, e.Err.Error())
		}
		return fmt.Sprintf("complete %s %s", name, formatCommand(e.Result))
	case core.EffectDeliver:
		p := e.Push
		line := fmt.Sprintf("deliver %s %v", e.Handler.(*namedHandler).name, p.Kind)
		if p.Command != nil && p.Kind != core.PushClosed && p.Kind != core.PushTopicMigrated {
			line += " " + formatCommand(p.Command)
		}
		if p.BrokerURL != "" || p.BrokerURLTLS != "" {
			line += fmt.Sprintf(" broker=%q tls=%q", p.BrokerURL, p.BrokerURLTLS)
		}
		if p.Payload != nil {
			line += fmt.Sprintf(" payload=%q checksum-ok=%v", p.Payload.Data, p.Payload.ChecksumOK)
		}
		if p.Err != nil {
			line += fmt.Sprintf(" err=%q", p.Err.Error())
		}
		return line
	case core.EffectState:
		line := fmt.Sprintf("state %v", e.State)
		switch e.Event {
		case core.EventOpened:
			line += fmt.Sprintf(" event=opened reconnect=%v", e.Reconnect)
		case core.EventClosed:
			line += fmt.Sprintf(" event=closed err=%q", errText(e.Err))
		case core.EventHandshakeFailed:
			line += fmt.Sprintf(" event=handshake-failed err=%q", errText(e.Err))
		}
		return line
	case core.EffectLog:
		line := fmt.Sprintf("log %v %s", e.Level, e.Msg)
		for _, a := range e.Attrs {
			line += fmt.Sprintf(" %s=%q", a.Key, a.Value.String())
		}
		return line
	}
	return fmt.Sprintf("effect %d?", e.Kind)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (s *script) rel(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return "+" + t.Sub(t0).String()
}

func (s *script) duration(v string) time.Duration {
	d, err := time.ParseDuration(v)
	require.NoError(s.t, err)
	return d
}

func (s *script) gen(args []string) uint64 {
	if g := arg(args, "gen"); g != "" {
		n, err := strconv.ParseUint(g, 10, 64)
		require.NoError(s.t, err)
		return n
	}
	return s.c.Gen()
}

// command parses `TYPE fields...`: the sub-command in the BaseCommand
// field whose number is the type's number.
func (s *script) command(spec string) *pulsarpb.BaseCommand {
	name, fields, _ := strings.Cut(strings.TrimSpace(spec), " ")
	v, ok := pulsarpb.BaseCommand_Type_value[name]
	require.True(s.t, ok, "unknown command type %q", name)
	fd := (&pulsarpb.BaseCommand{}).ProtoReflect().Descriptor().Fields().ByNumber(protoreflect.FieldNumber(v))
	require.NotNil(s.t, fd, "no field for %s", name)
	cmd := &pulsarpb.BaseCommand{}
	require.NoError(s.t, prototext.Unmarshal([]byte(fmt.Sprintf("type: %s %s: {%s}", name, fd.TextName(), fields)), cmd), spec)
	return cmd
}

// formatCommand renders a command as its type and its sub-command's
// fields, in field-number order (prototext's output is deliberately
// unstable).
func formatCommand(cmd *pulsarpb.BaseCommand) string {
	m := cmd.ProtoReflect()
	out := cmd.GetType().String()
	for _, fd := range setFields(m) {
		if fd.Number() == 1 {
			continue
		}
		if f := formatMessage(m.Get(fd).Message()); f != "" {
			out += " " + f
		}
	}
	return out
}

func setFields(m protoreflect.Message) []protoreflect.FieldDescriptor {
	var fds []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		fds = append(fds, fd)
		return true
	})
	slices.SortFunc(fds, func(a, b protoreflect.FieldDescriptor) int { return int(a.Number() - b.Number()) })
	return fds
}

func formatMessage(m protoreflect.Message) string {
	var parts []string
	for _, fd := range setFields(m) {
		v := m.Get(fd)
		if fd.IsList() {
			for i := range v.List().Len() {
				parts = append(parts, string(fd.TextName())+":"+formatValue(fd, v.List().Get(i)))
			}
			continue
		}
		parts = append(parts, string(fd.TextName())+":"+formatValue(fd, v))
	}
	return strings.Join(parts, " ")
}

func formatValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return "{" + formatMessage(v.Message()) + "}"
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return strconv.Itoa(int(v.Enum()))
	case protoreflect.StringKind:
		return strconv.Quote(v.String())
	case protoreflect.BytesKind:
		return strconv.Quote(string(v.Bytes()))
	}
	return fmt.Sprint(v.Interface())
}

// tokenize splits on spaces, keeping "quoted strings" (Go syntax) whole,
// as in err="connection reset by peer".
func tokenize(t *testing.T, s string) []string {
	var toks []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		i := 0
		for i < len(s) && s[i] != ' ' {
			if s[i] == '"' {
				q, err := strconv.QuotedPrefix(s[i:])
				require.NoError(t, err, "in %q", s)
				i += len(q)
				continue
			}
			i++
		}
		tok := s[:i]
		if k, v, ok := strings.Cut(tok, "="); ok && strings.HasPrefix(v, `"`) {
			u, err := strconv.Unquote(v)
			require.NoError(t, err)
			tok = k + "=" + u
		}
		toks = append(toks, tok)
		s = s[i:]
	}
	return toks
}

func arg(args []string, key string) string {
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func TestScriptFormatterIsStable(t *testing.T) {
	s := &script{t: t}
	cmd := s.command(`LOOKUP topic:"persistent://public/default/t" request_id:7 authoritative:true`)
	assert.Equal(t, `LOOKUP topic:"persistent://public/default/t" request_id:7 authoritative:true`, formatCommand(cmd))
	assert.Equal(t, "PING", formatCommand(ping()))
	assert.Equal(t, []string{"a", "err=x y", "b=c"}, tokenize(t, `a err="x y" b=c`))
}
