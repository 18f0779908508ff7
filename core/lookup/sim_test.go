package lookup_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/core/lookup"
)

var (
	simSeeds = flag.Int("seeds", 10_000, "TestSimulation: how many seeds to run")
	simSeed  = flag.Uint64("seed", 0, "TestSimulation: run only this seed, and print its log")
)

// The kinds of service host in a simulated world.
const (
	hostUp        = iota // connects
	hostRefused          // refuses at once
	hostBlackhole        // never answers: the attempt fails at the connect timeout
	hostFlaky            // refuses one attempt in two
)

const connectTimeout = 10 * time.Second

// world is one seed's cluster: service hosts of random kinds, brokers that
// answer at random (redirect loops, proxies, retryable and fatal errors),
// random latencies, a timeout and maybe a caller who cancels.
type world struct {
	rng      *rand.Rand
	cfg      lookup.Config
	backoff  *core.Backoff
	kinds    []int
	healthy  bool          // no errors, and redirect chains end within the limit
	chain    int           // healthy: redirects before the Connect answer
	cancelAt time.Duration // 0: never
	nErr     int
	end      lookup.Action // how the lookup ended
	log      strings.Builder
}

func newWorld(seed uint64) *world {
	rng := rand.New(rand.NewPCG(seed, 0x100c))
	w := &world{rng: rng, healthy: rng.IntN(3) == 0}
	n := 1 + rng.IntN(4)
	w.cfg = lookup.Config{
		Topic:        "t",
		Partitions:   rng.IntN(5) == 0,
		First:        rng.IntN(8),
		TLS:          rng.IntN(3) == 0,
		MaxRedirects: rng.IntN(5),
		Timeout:      time.Duration(1+rng.IntN(60)) * time.Second,
	}
	w.backoff = &core.Backoff{Min: 100 * time.Millisecond, Max: time.Duration(1+rng.IntN(10)) * time.Second, Rand: rng.Float64}
	w.cfg.Backoff = w.backoff
	for i := range n {
		w.cfg.Hosts = append(w.cfg.Hosts, fmt.Sprintf("pulsar://s%d:6650", i))
		w.kinds = append(w.kinds, rng.IntN(4))
	}
	if w.healthy {
		w.kinds[rng.IntN(n)] = hostUp
		w.cfg.Timeout = time.Minute
		w.chain = rng.IntN(w.cfg.MaxRedirects + 1)
	} else if rng.IntN(4) == 0 {
		w.cancelAt = time.Duration(rng.Int64N(int64(w.cfg.Timeout)))
	}
	fmt.Fprintf(&w.log, "config %+v kinds %v healthy %v chain %d cancelAt %v\n", w.cfg, w.kinds, w.healthy, w.chain, w.cancelAt)
	return w
}

// latency is how long an answer takes.
func (w *world) latency(max time.Duration) time.Duration {
	return time.Duration(w.rng.Int64N(int64(max) + 1))
}

// fault returns a new error matching sentinel, distinct from every other.
func (w *world) fault(sentinel error) error {
	w.nErr++
	return fmt.Errorf("fault %d: %w", w.nErr, sentinel)
}

// answer is a broker's answer to the redirects-th Send of a try.
func (w *world) answer(redirects int) lookup.Answer {
	a := lookup.Answer{
		Authoritative:          w.rng.IntN(2) == 0,
		ProxyThroughServiceURL: w.rng.IntN(3) == 0,
		Partitions:             w.rng.IntN(4),
	}
	if w.healthy {
		a.Redirect = redirects < w.chain
	} else {
		a.Redirect = w.rng.IntN(2) == 0
	}
	k := w.rng.IntN(4)
	a.BrokerURL = fmt.Sprintf("pulsar://b%d:6650", k)
	if w.healthy || w.rng.IntN(20) != 0 {
		a.BrokerURLTLS = fmt.Sprintf("pulsar+ssl://b%d:6651", k)
	}
	return a
}

// run drives one lookup through the world, checking every step; it
// returns a description of the first broken rule, or "".
func (w *world) run() string {
	now := t0
	deadline := t0.Add(w.cfg.Timeout)
	m := lookup.New(now, w.cfg)
	n := len(w.cfg.Hosts)

	var (
		picks         int           // service hosts picked
		tryHost       = -1          // the service host of the current try
		refused       int           // failed connection attempts in a row, this try
		redirects     int           // Redirect answers followed, this try
		lastAnswer    lookup.Answer // the last answer fed
		lastEvent     string        // what was fed last
		lastErr       error         // the error fed last
		retriedErr    error         // the last error that led to a Wait
		cancelled     bool
		waits         int
		ended         time.Time
		prev          lookup.Action
		fatal         error // a non-retryable error fed
		expectedURL   string
		expectedProxy string
	)
	for step := 0; ; step++ {
		act := m.Action()
		fmt.Fprintf(&w.log, "%v: %s\n", now.Sub(t0), show(act))
		if step > 100_000 {
			return "does not end"
		}
		// The rules every Action keeps.
		if (act.Host >= 0) != ((act.Kind == lookup.Connect || act.Kind == lookup.Send) && !act.Redirect) {
			return "Host set on an Action that is not about a service host"
		}
		if act.Host >= 0 && act.Target != w.cfg.Hosts[act.Host] {
			return "Target is not the service host"
		}
		if act.Kind == lookup.Connect && n == 1 {
			return "Connect with one service host"
		}
		if want := deadlineOf(act, deadline); !m.Deadline().Equal(want) {
			return fmt.Sprintf("Deadline() = %v, want %v", m.Deadline().Sub(t0), want.Sub(t0))
		}
		if step == 0 || prev.Kind == lookup.Wait {
			refused = 0 // a new try
		}
		// Each service host picked, at the start of a try or after a failed
		// connection attempt, is the next one round robin.
		if act.Kind == lookup.Connect || (n == 1 && act.Kind == lookup.Send && act.Host >= 0) {
			if want := (w.cfg.First + picks) % n; act.Host != want {
				return fmt.Sprintf("pick %d asks host %d, want %d (round robin)", picks, act.Host, want)
			}
			if prev.Kind == lookup.Connect && lastEvent != "failed" {
				return "passed to the next host without a failed attempt"
			}
			picks++
			tryHost, redirects = act.Host, 0
		}
		switch act.Kind {
		case lookup.Done, lookup.Fail:
			ended = now
		case lookup.Send:
			if act.Redirect {
				redirects++
				if redirects > w.cfg.MaxRedirects {
					return "more redirects than the limit"
				}
				if act.Target != expectedURL || act.Proxy != expectedProxy || act.Authoritative != lastAnswer.Authoritative {
					return "the redirect does not follow the answer"
				}
			}
		case lookup.Wait:
			waits++
			retriedErr = lastErr
			if lastEvent != "failed" {
				return "waits without a failure"
			}
			if prev.Kind == lookup.Connect && refused != n {
				return fmt.Sprintf("backs off after %d of %d hosts refused", refused, n)
			}
			d := act.Until.Sub(now)
			if act.Until.After(deadline) || d > w.backoff.Max || (d < w.backoff.Min/2 && !act.Until.Equal(deadline)) {
				return fmt.Sprintf("waits %v", d)
			}
		}
		if !ended.IsZero() {
			break
		}
		prev = act

		// What comes of the Action, and when.
		var at time.Duration
		var feed func(now time.Time) lookup.Action
		switch act.Kind {
		case lookup.Wait:
			at = act.Until.Sub(t0)
			lastEvent = "tick"
			feed = m.Tick
		case lookup.Connect:
			kind := w.kinds[act.Host]
			if kind == hostFlaky {
				kind = []int{hostUp, hostRefused}[w.rng.IntN(2)]
			}
			switch kind {
			case hostUp:
				at, lastEvent = now.Sub(t0)+w.latency(100*time.Millisecond), "connected"
				feed = m.Connected
			case hostRefused, hostBlackhole:
				lat, sentinel := w.latency(10*time.Millisecond), errors.New("refused")
				if kind == hostBlackhole {
					lat, sentinel = connectTimeout, core.ErrConnectTimeout
				}
				at, lastEvent, lastErr = now.Sub(t0)+lat, "failed", w.fault(sentinel)
				refused++
				err := lastErr
				feed = func(now time.Time) lookup.Action { return m.Failed(now, err, true) }
			}
		case lookup.Send:
			at = now.Sub(t0) + w.latency(500*time.Millisecond)
			switch r := w.rng.IntN(20); {
			case !w.healthy && r < 4:
				lastEvent, lastErr = "failed", w.fault(core.ErrServiceNotReady)
				err := lastErr
				feed = func(now time.Time) lookup.Action { return m.Failed(now, err, true) }
			case !w.healthy && r == 4:
				lastEvent, lastErr = "failed", w.fault(core.ErrAuthorization)
				fatal = lastErr
				err := lastErr
				feed = func(now time.Time) lookup.Action { return m.Failed(now, err, false) }
			default:
				a := w.answer(redirects)
				lastEvent, lastAnswer = "answered", a
				expectedURL, expectedProxy = a.BrokerURL, ""
				if w.cfg.TLS {
					expectedURL = a.BrokerURLTLS
				}
				if a.ProxyThroughServiceURL {
					expectedProxy = w.cfg.Hosts[tryHost]
				}
				feed = func(now time.Time) lookup.Action { return m.Answered(now, a) }
			}
		}
		// The caller's context, or the lookup's timeout, may end first.
		switch {
		case w.cancelAt > 0 && w.cancelAt <= at:
			now, lastEvent, cancelled = t0.Add(w.cancelAt), "cancelled", true
			var err error
			if act.Kind != lookup.Wait {
				err = fmt.Errorf("in flight: %w", context.Canceled)
			}
			m.Cancelled(now, err, context.Canceled)
		case t0.Add(at).After(deadline) && act.Kind != lookup.Wait:
			now, lastEvent = deadline, "deadline"
			if w.rng.IntN(2) == 0 {
				m.Tick(now)
			} else {
				m.Cancelled(now, fmt.Errorf("in flight: %w", context.DeadlineExceeded), context.DeadlineExceeded)
			}
		default:
			now = t0.Add(at)
			feed(now)
		}
		fatal = fatalIf(lastEvent, fatal)
	}
	return w.checkEnd(m, ended, deadline, endState{lastEvent, lastAnswer, retriedErr, fatal, cancelled, waits, redirects, expectedURL, expectedProxy})
}

// fatalIf forgets a fatal error once something else was fed.
func fatalIf(lastEvent string, fatal error) error {
	if lastEvent != "failed" {
		return nil
	}
	return fatal
}

// endState is what the checker of the end knows of the run.
type endState struct {
	lastEvent              string
	lastAnswer             lookup.Answer
	retriedErr, fatal      error
	cancelled              bool
	waits, redirects       int
	expectedURL, wantProxy string
}

// checkEnd checks how a lookup ended.
func (w *world) checkEnd(m *lookup.Machine, ended, deadline time.Time, s endState) string {
	end := m.Action()
	w.end = end
	if ended.After(deadline) {
		return fmt.Sprintf("ends at %v, after the deadline %v", ended.Sub(t0), deadline.Sub(t0))
	}
	if m.Redirects() != s.redirects {
		return fmt.Sprintf("Redirects() = %d, want %d", m.Redirects(), s.redirects)
	}
	if w.healthy && end.Kind != lookup.Done {
		return fmt.Sprintf("a healthy world with a host up fails: %v", end.Err)
	}
	if w.healthy && s.waits > 0 {
		return "a healthy world with a host up needs a retry: a host down costs more than its attempt"
	}
	if end.Kind == lookup.Done {
		switch {
		case s.lastEvent != "answered" || (s.lastAnswer.Redirect && !w.cfg.Partitions):
			return "done without a Connect answer"
		case w.cfg.Partitions && end.Partitions != s.lastAnswer.Partitions:
			return "done with other partitions than answered"
		case !w.cfg.Partitions && (end.Target != s.expectedURL || end.Proxy != s.wantProxy):
			return "done with another owner than answered"
		}
		return ""
	}
	err := end.Err
	switch {
	case s.lastEvent == "cancelled" && !errors.Is(err, context.Canceled):
		return fmt.Sprintf("cancelled, fails with %v", err)
	case s.lastEvent == "deadline" || (s.lastEvent == "tick" && ended.Equal(deadline)):
		if !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Sprintf("at the deadline, fails with %v", err)
		}
	case s.fatal != nil && !errors.Is(err, s.fatal):
		return fmt.Sprintf("after a fatal %v, fails with %v", s.fatal, err)
	case s.lastEvent == "answered":
		tooMany := s.lastAnswer.Redirect && s.redirects == w.cfg.MaxRedirects
		noTLS := w.cfg.TLS && s.lastAnswer.BrokerURLTLS == ""
		if !(tooMany && errors.Is(err, lookup.ErrTooManyRedirects)) && !(noTLS && errors.Is(err, core.ErrProtocol)) {
			return fmt.Sprintf("after an answer, fails with %v", err)
		}
	}
	if (s.lastEvent == "cancelled" || s.lastEvent == "deadline" || s.lastEvent == "tick") && s.retriedErr != nil && !errors.Is(err, s.retriedErr) {
		return fmt.Sprintf("when its time is up, fails with %v, not the last failure retried %v", err, s.retriedErr)
	}
	return ""
}

// deadlineOf is when Tick is wanted for act.
func deadlineOf(act lookup.Action, deadline time.Time) time.Time {
	switch act.Kind {
	case lookup.Wait:
		return act.Until
	case lookup.Done, lookup.Fail:
		return time.Time{}
	}
	return deadline
}

// TestSimulation runs lookups in random worlds — service hosts up, down,
// blackholed or flaky; redirect loops, proxies, retryable and fatal
// errors; deadlines and cancellations — and checks each step: round robin
// over the hosts, every host tried before a backoff, never more redirects
// than the limit, redirects and results that follow the answers, backoffs
// within bounds, an end by the deadline, and a lookup that succeeds
// without a retry whenever a host is up and the brokers answer.
// -seeds=N runs more; -seed=S runs one and prints its log.
func TestSimulation(t *testing.T) {
	first, count := uint64(1), *simSeeds
	if *simSeed != 0 {
		first, count = *simSeed, 1
	}
	outcomes := map[string]int{}
	for seed := first; seed < first+uint64(count); seed++ {
		w := newWorld(seed)
		if msg := w.run(); msg != "" {
			t.Fatalf("seed %d: %s\n%s", seed, msg, w.log.String())
		}
		if *simSeed != 0 {
			t.Log(w.log.String())
		}
		outcomes[outcome(w.end)]++
	}
	t.Logf("%d seeds: %v", count, outcomes)
}

// outcome names how a world's lookup ended, to show that the seeds reach
// every ending.
func outcome(end lookup.Action) string {
	for _, e := range []struct {
		err  error
		name string
	}{
		{lookup.ErrTooManyRedirects, "too many redirects"},
		{core.ErrProtocol, "no TLS URL"},
		{core.ErrAuthorization, "fatal"},
		{context.Canceled, "cancelled"},
		{context.DeadlineExceeded, "deadline"},
	} {
		if errors.Is(end.Err, e.err) {
			return e.name
		}
	}
	return end.Kind.String()
}
