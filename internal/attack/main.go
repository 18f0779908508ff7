// Command attack measures how "pulsarconn serve" holds up against hostile
// clients: it starts serve as a separate process on loopback, runs three
// attacks on it in phases, each added to the ones before, and samples the
// serve process's memory (VmRSS and VmHWM of /proc/PID/status, Linux) and
// the latency of a well-behaved "pulsarconn lookup" (the CLI, run as a
// process) all along:
//
//  1. frames: 1,000 connections that each announce a 5 MiB frame (a
//     length prefix) and send 10 bytes of it, then nothing;
//  2. flood: one client that sends LOOKUP requests as fast as the server
//     reads them and never reads an answer;
//  3. idle: 2,000 connections that complete the handshake and then stay
//     idle.
//
// A connection the server closes is opened again, as an attacker would.
// Usage (from the module root; 3,000+ connections need `ulimit -n` of
// about 7,000: both ends of each connection are on this machine, in two
// processes):
//
//	go run ./internal/attack [--bin PATH] [--phase 15s] [--frames 1000] [--idle 2000] [--order frames,flood,idle]
//
// Without --bin it builds ./cmd/pulsarconn first. It prints one line per
// phase, and a Markdown table at the end; docs/reliability.md has the
// figures.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

type options struct {
	bin        string
	phase      time.Duration
	frames     int
	frameBytes int
	idle       int
	rssLimit   int64 // KiB: serve is killed past it
	serveArgs  string
	order      string
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "pulsarconn binary to attack (default: go build ./cmd/pulsarconn)")
	flag.DurationVar(&o.phase, "phase", 15*time.Second, "length of each phase")
	flag.IntVar(&o.frames, "frames", 1000, "connections announcing a 5 MiB frame")
	flag.IntVar(&o.frameBytes, "frame-bytes", 10, "bytes of the announced frame each of them sends")
	flag.IntVar(&o.idle, "idle", 2000, "idle connections (handshake done)")
	flag.Int64Var(&o.rssLimit, "rss-limit-mib", 3072, "kill serve if its RSS passes this many MiB")
	flag.StringVar(&o.serveArgs, "serve-args", "", "extra arguments for serve, space separated")
	flag.StringVar(&o.order, "order", "frames,flood,idle", "the attacks, in the order they start (a subset is fine)")
	flag.Parse()
	o.rssLimit <<= 10
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "attack:", err)
		os.Exit(1)
	}
}

// phaseStats is what was measured during one phase.
type phaseStats struct {
	name              string
	rssPeak, hwmEnd   int64 // KiB
	lookups, failed   int
	latencies         []time.Duration
	attackConns       int64 // attack connections open at the end
	reconnects        int64 // attack connections the server closed, during the phase
	floodDisconnects  int64
	floodRequestsSent int64
	serveDied         bool
}

func run(o options) error {
	bin := o.bin
	if bin == "" {
		dir, err := os.MkdirTemp("", "attack-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "pulsarconn")
		build := exec.Command("go", "build", "-o", bin, "./cmd/pulsarconn")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building pulsarconn: %w", err)
		}
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		need := uint64(2*(o.frames+o.idle) + 200)
		if lim.Cur < need {
			return fmt.Errorf("ulimit -n is %d; %d connections need about %d (both ends are here): raise it with ulimit -n", lim.Cur, o.frames+o.idle, need)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	args := []string{"serve", "--listen", "pulsar://127.0.0.1:0"}
	if o.serveArgs != "" {
		args = append(args, strings.Fields(o.serveArgs)...)
	}
	srv := exec.CommandContext(ctx, bin, args...)
	srv.Stderr = os.Stderr
	out, err := srv.StdoutPipe()
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	serveDone := make(chan struct{})
	go func() { _ = srv.Wait(); close(serveDone) }()
	defer func() {
		_ = srv.Process.Signal(os.Interrupt)
		select {
		case <-serveDone:
		case <-time.After(10 * time.Second):
			_ = srv.Process.Kill()
			<-serveDone
		}
	}()
	url, err := servingURL(out)
	if err != nil {
		return err
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	addr := strings.TrimPrefix(url, "pulsar://")
	pid := srv.Process.Pid
	fmt.Printf("serve (pid %d) at %s; phases of %v\n", pid, url, o.phase)

	m := &monitor{pid: pid, limit: o.rssLimit, kill: func() { _ = srv.Process.Kill() }}
	go m.sample(ctx, serveDone)
	p := &prober{bin: bin, url: url}
	go p.run(ctx)

	a := &attacker{addr: addr}
	var stats []phaseStats
	phase := func(name string, start func()) {
		if start != nil {
			start()
		}
		m.reset()
		p.reset()
		r0 := a.reconnects.Load()
		fd0 := a.floodDisconnects.Load()
		fs0 := a.floodSent.Load()
		select {
		case <-time.After(o.phase):
		case <-serveDone:
		}
		st := phaseStats{name: name, attackConns: a.open.Load(), reconnects: a.reconnects.Load() - r0,
			floodDisconnects: a.floodDisconnects.Load() - fd0, floodRequestsSent: a.floodSent.Load() - fs0}
		st.rssPeak, st.hwmEnd = m.read()
		st.lookups, st.failed, st.latencies = p.read()
		select {
		case <-serveDone:
			st.serveDied = true
		default:
		}
		stats = append(stats, st)
		fmt.Println(st.line())
	}
	phase("baseline", nil)
	for _, name := range strings.Split(o.order, ",") {
		switch name {
		case "frames":
			phase(fmt.Sprintf("+ %d conns announcing 5 MiB", o.frames), func() {
				for range o.frames {
					go a.announce(ctx, o.frameBytes)
				}
			})
		case "flood":
			phase("+ 1 client flooding lookups, not reading", func() { go a.flood(ctx) })
		case "idle":
			phase(fmt.Sprintf("+ %d idle conns", o.idle), func() {
				sem := make(chan struct{}, 64)
				for range o.idle {
					sem <- struct{}{}
					go a.idleConn(ctx, func() { <-sem })
				}
			})
		default:
			return fmt.Errorf("--order: unknown attack %q (frames, flood, idle)", name)
		}
	}
	cancel()
	fmt.Println()
	fmt.Println("| phase | serve VmRSS peak | VmHWM at end | lookups answered | lookup latency p50 / max | attack conns open | closed by serve |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- |")
	for _, st := range stats {
		fmt.Println(st.row())
	}
	return nil
}

func (st phaseStats) latency() (p50, worst time.Duration) {
	if len(st.latencies) == 0 {
		return 0, 0
	}
	l := slices.Clone(st.latencies)
	slices.Sort(l)
	return l[len(l)/2], l[len(l)-1]
}

func (st phaseStats) line() string {
	p50, worst := st.latency()
	s := fmt.Sprintf("%-45s VmRSS peak %4d MiB, VmHWM %4d MiB; lookups %d/%d, p50 %v max %v; attack conns %d, closed by serve %d; flood sent %d, cut %d",
		st.name, st.rssPeak>>10, st.hwmEnd>>10, st.lookups-st.failed, st.lookups, p50.Round(time.Millisecond), worst.Round(time.Millisecond),
		st.attackConns, st.reconnects, st.floodRequestsSent, st.floodDisconnects)
	if st.serveDied {
		s += " — serve DIED"
	}
	return s
}

func (st phaseStats) row() string {
	p50, worst := st.latency()
	died := ""
	if st.serveDied {
		died = " (serve died)"
	}
	return fmt.Sprintf("| %s | %d MiB | %d MiB | %d of %d%s | %v / %v | %d | %d |",
		st.name, st.rssPeak>>10, st.hwmEnd>>10, st.lookups-st.failed, st.lookups, died,
		p50.Round(time.Millisecond), worst.Round(time.Millisecond), st.attackConns, st.reconnects)
}

// servingURL reads serve's output up to its "serving URL" line.
func servingURL(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "serving "); ok {
			return strings.Fields(rest)[0], nil
		}
	}
	return "", errors.New("serve ended without serving")
}

// monitor samples the serve process's memory every 50 ms.
type monitor struct {
	pid   int
	limit int64
	kill  func()

	mu      sync.Mutex
	rssPeak int64
	hwm     int64
}

func (m *monitor) sample(ctx context.Context, done <-chan struct{}) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-t.C:
		}
		rss, hwm, err := memory(m.pid)
		if err != nil {
			continue
		}
		m.mu.Lock()
		m.rssPeak = max(m.rssPeak, rss)
		m.hwm = hwm
		m.mu.Unlock()
		if rss > m.limit {
			fmt.Fprintf(os.Stderr, "attack: serve's RSS %d MiB passed the limit; killing it\n", rss>>10)
			m.kill()
			return
		}
	}
}

func (m *monitor) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rssPeak = 0
}

func (m *monitor) read() (rssPeak, hwm int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rssPeak, m.hwm
}

// memory reads VmRSS and VmHWM (KiB) of a process.
func memory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(value)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch name {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm, nil
}

// prober runs "pulsarconn lookup" one after the other, each with a 10 s
// timeout, and records how long each took and whether it answered.
type prober struct {
	bin, url string

	mu        sync.Mutex
	lookups   int
	failed    int
	latencies []time.Duration
}

func (p *prober) run(ctx context.Context) {
	for ctx.Err() == nil {
		start := time.Now()
		cmd := exec.CommandContext(ctx, p.bin, "lookup", "--url", p.url, "--timeout", "10s", "persistent://public/default/probe")
		out, err := cmd.CombinedOutput()
		d := time.Since(start)
		if ctx.Err() != nil {
			return
		}
		ok := err == nil && strings.Contains(string(out), "lookup persistent://public/default/probe: connect to")
		p.mu.Lock()
		p.lookups++
		if ok {
			p.latencies = append(p.latencies, d)
		} else {
			p.failed++
			fmt.Fprintf(os.Stderr, "attack: lookup failed after %v: %v %s", d.Round(time.Millisecond), err, out)
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (p *prober) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lookups, p.failed, p.latencies = 0, 0, nil
}

func (p *prober) read() (lookups, failed int, latencies []time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lookups, p.failed, slices.Clone(p.latencies)
}

// attacker opens the attack connections, and opens again those the
// server closes.
type attacker struct {
	addr string

	open             atomic.Int64
	reconnects       atomic.Int64
	floodDisconnects atomic.Int64
	floodSent        atomic.Int64
}

// dial connects, retrying while the server is too busy to accept.
func (a *attacker) dial(ctx context.Context) (net.Conn, error) {
	for {
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", a.addr)
		if err == nil {
			return nc, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// hold keeps nc open until the server closes it or ctx ends, reading and
// discarding what the server sends; it reports whether the server closed.
func (a *attacker) hold(ctx context.Context, nc net.Conn) bool {
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	defer stop()
	_, _ = io.Copy(io.Discard, nc)
	_ = nc.Close()
	return ctx.Err() == nil
}

// announce: a connection announcing a 5 MiB frame and sending n bytes of
// it; again when the server closes it.
func (a *attacker) announce(ctx context.Context, n int) {
	msg := binary.BigEndian.AppendUint32(nil, 5<<20)
	msg = append(msg, make([]byte, n)...)
	for ctx.Err() == nil {
		nc, err := a.dial(ctx)
		if err != nil {
			return
		}
		a.open.Add(1)
		_, err = nc.Write(msg)
		closed := err == nil && a.hold(ctx, nc)
		if err != nil {
			_ = nc.Close()
			closed = ctx.Err() == nil
		}
		a.open.Add(-1)
		if closed {
			a.reconnects.Add(1)
		}
	}
}

func connectFrame() []byte {
	b, err := frame.AppendCommand(nil, &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_CONNECT.Enum(),
		Connect: &pulsarpb.CommandConnect{
			ClientVersion:   proto.String("attack"),
			ProtocolVersion: proto.Int32(21),
		},
	})
	if err != nil {
		panic(err)
	}
	return b
}

// flood: one connection that sends CONNECT and then LOOKUP requests as
// fast as it can, never reading; again when the server closes it.
func (a *attacker) flood(ctx context.Context) {
	var batch []byte
	const perBatch = 1000
	for i := range perBatch {
		b, err := frame.AppendCommand(batch, &pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_LOOKUP.Enum(),
			LookupTopic: &pulsarpb.CommandLookupTopic{
				Topic:     proto.String("persistent://public/default/flood"),
				RequestId: proto.Uint64(uint64(i)),
			},
		})
		if err != nil {
			panic(err)
		}
		batch = b
	}
	for ctx.Err() == nil {
		nc, err := a.dial(ctx)
		if err != nil {
			return
		}
		a.open.Add(1)
		stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
		_, err = nc.Write(connectFrame())
		for err == nil {
			_, err = nc.Write(batch)
			if err == nil {
				a.floodSent.Add(perBatch)
			}
		}
		stop()
		_ = nc.Close()
		a.open.Add(-1)
		if ctx.Err() == nil {
			a.floodDisconnects.Add(1)
			a.reconnects.Add(1)
		}
	}
}

// idleConn: a connection that completes the handshake and then sends
// nothing; again when the server closes it. release is called once the
// first handshake is done (or failed).
func (a *attacker) idleConn(ctx context.Context, release func()) {
	once := sync.OnceFunc(release)
	defer once()
	for ctx.Err() == nil {
		nc, err := a.dial(ctx)
		if err != nil {
			return
		}
		a.open.Add(1)
		_, err = nc.Write(connectFrame())
		if err == nil {
			_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, err = frame.NewReader(nc, 0).Next()
			_ = nc.SetReadDeadline(time.Time{})
		}
		once()
		closed := false
		if err == nil {
			closed = a.hold(ctx, nc)
		} else {
			_ = nc.Close()
			closed = ctx.Err() == nil
		}
		a.open.Add(-1)
		if closed {
			a.reconnects.Add(1)
		}
	}
}
