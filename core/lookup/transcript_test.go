package lookup_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/core/lookup"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	s1 = "pulsar://s1:6650"
	s2 = "pulsar://s2:6650"
	s3 = "pulsar://s3:6650"
)

// show renders an Action as a transcript line; times are offsets from t0.
func show(a lookup.Action) string {
	var b strings.Builder
	b.WriteString(a.Kind.String())
	if a.Host >= 0 && (a.Kind == lookup.Connect || a.Kind == lookup.Send) {
		fmt.Fprintf(&b, " host=%d", a.Host)
	}
	if a.Target != "" {
		b.WriteString(" " + a.Target)
	}
	if a.Proxy != "" {
		b.WriteString(" via=" + a.Proxy)
	}
	if a.Authoritative {
		b.WriteString(" authoritative")
	}
	if a.Redirect {
		b.WriteString(" redirect")
	}
	if a.Kind == lookup.Wait {
		fmt.Fprintf(&b, " until=%v", a.Until.Sub(t0))
	}
	if a.Partitions != 0 {
		fmt.Fprintf(&b, " partitions=%d", a.Partitions)
	}
	return b.String()
}

// An event is one input to the machine at an offset from t0.
type event struct {
	at time.Duration
	do func(m *lookup.Machine, now time.Time) lookup.Action
}

func connected(at time.Duration) event {
	return event{at, func(m *lookup.Machine, now time.Time) lookup.Action { return m.Connected(now) }}
}

func answered(at time.Duration, a lookup.Answer) event {
	return event{at, func(m *lookup.Machine, now time.Time) lookup.Action { return m.Answered(now, a) }}
}

func failed(at time.Duration, err error, retryable bool) event {
	return event{at, func(m *lookup.Machine, now time.Time) lookup.Action { return m.Failed(now, err, retryable) }}
}

func tick(at time.Duration) event {
	return event{at, func(m *lookup.Machine, now time.Time) lookup.Action { return m.Tick(now) }}
}

func cancelled(at time.Duration, err, cause error) event {
	return event{at, func(m *lookup.Machine, now time.Time) lookup.Action { return m.Cancelled(now, err, cause) }}
}

// connectTo is a Connect answer naming owner (both URLs).
func connectTo(owner string) lookup.Answer {
	return lookup.Answer{BrokerURL: owner, BrokerURLTLS: owner}
}

// redirectTo is a Redirect answer to url.
func redirectTo(url string, authoritative bool) lookup.Answer {
	return lookup.Answer{BrokerURL: url, BrokerURLTLS: url, Redirect: true, Authoritative: authoritative}
}

var (
	errRefused      = errors.New("connection refused")
	errNotReady     = fmt.Errorf("%w: bundle unloading", core.ErrServiceNotReady)
	errUnauthorized = fmt.Errorf("%w: no", core.ErrAuthorization)
)

// With no jitter (Rand nil) the backoff of 100ms..1s waits 75ms, 150ms,
// 300ms, 600ms, 750ms, 750ms, ...
func config(hosts ...string) lookup.Config {
	return lookup.Config{Topic: "t", Hosts: hosts, MaxRedirects: 20, Timeout: 30 * time.Second,
		Backoff: &core.Backoff{Min: 100 * time.Millisecond, Max: time.Second}}
}

// TestTranscripts feeds each case's events to a machine and checks every
// Action it returns, then the end: its error and how many redirects.
func TestTranscripts(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       func(*lookup.Config)
		hosts     []string
		script    []event
		want      []string // the first Action, then one per event
		err       error    // the Fail's error matches it
		redirects int
	}{{
		name:   "one host: asked at once, its connection waits to be connected",
		hosts:  []string{s1},
		script: []event{answered(5*time.Millisecond, connectTo("pulsar://owner:6650"))},
		want:   []string{"Send host=0 " + s1, "Done pulsar://owner:6650"},
	}, {
		name:  "redirects are followed with the authoritative flag of the last one",
		hosts: []string{s1},
		script: []event{
			answered(0, redirectTo("pulsar://b1:6650", false)),
			answered(0, redirectTo("pulsar://owner:6650", true)),
			answered(0, connectTo("pulsar://owner:6650")),
		},
		want: []string{
			"Send host=0 " + s1,
			"Send pulsar://b1:6650 redirect",
			"Send pulsar://owner:6650 authoritative redirect",
			"Done pulsar://owner:6650",
		},
		redirects: 2,
	}, {
		name:  "one redirect more than the limit fails",
		cfg:   func(c *lookup.Config) { c.MaxRedirects = 2 },
		hosts: []string{s1},
		script: []event{
			answered(0, redirectTo("pulsar://loop:6650", false)),
			answered(0, redirectTo("pulsar://loop:6650", false)),
			answered(0, redirectTo("pulsar://loop:6650", false)),
		},
		want: []string{
			"Send host=0 " + s1,
			"Send pulsar://loop:6650 redirect",
			"Send pulsar://loop:6650 redirect",
			"Fail",
		},
		err:       lookup.ErrTooManyRedirects,
		redirects: 2,
	}, {
		name:   "a limit of 0 follows no redirect",
		cfg:    func(c *lookup.Config) { c.MaxRedirects = 0 },
		hosts:  []string{s1},
		script: []event{answered(0, redirectTo("pulsar://b1:6650", true))},
		want:   []string{"Send host=0 " + s1, "Fail"},
		err:    lookup.ErrTooManyRedirects,
	}, {
		name:  "proxy_through_service_url keeps to the service host of the try, redirects included",
		hosts: []string{s1, s2},
		cfg:   func(c *lookup.Config) { c.First = 1 },
		script: []event{
			connected(0),
			answered(0, lookup.Answer{BrokerURL: "pulsar://b1:6650", Redirect: true, ProxyThroughServiceURL: true}),
			answered(0, lookup.Answer{BrokerURL: "pulsar://owner:6650", ProxyThroughServiceURL: true}),
		},
		want: []string{
			"Connect host=1 " + s2,
			"Send host=1 " + s2,
			"Send pulsar://b1:6650 via=" + s2 + " redirect",
			"Done pulsar://owner:6650 via=" + s2,
		},
		redirects: 1,
	}, {
		name:   "TLS picks the TLS URL",
		cfg:    func(c *lookup.Config) { c.TLS = true },
		hosts:  []string{"pulsar+ssl://s1:6651"},
		script: []event{answered(0, lookup.Answer{BrokerURL: "pulsar://owner:6650", BrokerURLTLS: "pulsar+ssl://owner:6651"})},
		want:   []string{"Send host=0 pulsar+ssl://s1:6651", "Done pulsar+ssl://owner:6651"},
	}, {
		name:   "TLS with no TLS URL in the answer is a protocol error",
		cfg:    func(c *lookup.Config) { c.TLS = true },
		hosts:  []string{"pulsar+ssl://s1:6651"},
		script: []event{answered(0, lookup.Answer{BrokerURL: "pulsar://owner:6650"})},
		want:   []string{"Send host=0 pulsar+ssl://s1:6651", "Fail"},
		err:    core.ErrProtocol,
	}, {
		name:  "retryable failures are retried after a growing backoff, the redirect count starting again",
		hosts: []string{s1},
		script: []event{
			answered(0, redirectTo("pulsar://b1:6650", false)),
			failed(10*time.Millisecond, errNotReady, true),
			tick(85 * time.Millisecond),
			failed(100*time.Millisecond, core.ErrDisconnected, true),
			tick(200 * time.Millisecond), // early: still waiting
			tick(250 * time.Millisecond),
			answered(260*time.Millisecond, connectTo(s1)),
		},
		want: []string{
			"Send host=0 " + s1,
			"Send pulsar://b1:6650 redirect",
			"Wait until=85ms",
			"Send host=0 " + s1,
			"Wait until=250ms",
			"Wait until=250ms",
			"Send host=0 " + s1,
			"Done " + s1,
		},
	}, {
		name:   "a failure that is not retryable ends the lookup",
		hosts:  []string{s1, s2},
		script: []event{connected(0), failed(0, errUnauthorized, false)},
		want:   []string{"Connect host=0 " + s1, "Send host=0 " + s1, "Fail"},
		err:    core.ErrAuthorization,
	}, {
		name:  "a service host whose connection attempt fails is passed over at once",
		hosts: []string{s1, s2},
		script: []event{
			failed(10*time.Second, core.ErrConnectTimeout, true),
			connected(10 * time.Second),
			answered(10*time.Second, connectTo("pulsar://owner:6650")),
		},
		want: []string{"Connect host=0 " + s1, "Connect host=1 " + s2, "Send host=1 " + s2, "Done pulsar://owner:6650"},
	}, {
		name:  "when every host fails, the try is retried after a backoff from the next host on",
		hosts: []string{s1, s2, s3},
		cfg:   func(c *lookup.Config) { c.First = 2 },
		script: []event{
			failed(0, errRefused, true),
			failed(0, errRefused, true),
			failed(0, errRefused, true),
			tick(75 * time.Millisecond),
			failed(75*time.Millisecond, errRefused, true),
			connected(75 * time.Millisecond),
		},
		want: []string{
			"Connect host=2 " + s3, "Connect host=0 " + s1, "Connect host=1 " + s2,
			"Wait until=75ms",
			"Connect host=2 " + s3, "Connect host=0 " + s1, "Send host=0 " + s1,
		},
	}, {
		name:  "a failed request to a service host is retried from the next host",
		hosts: []string{s1, s2},
		script: []event{
			connected(0),
			failed(0, core.ErrDisconnected, true),
			tick(75 * time.Millisecond),
		},
		want: []string{"Connect host=0 " + s1, "Send host=0 " + s1, "Wait until=75ms", "Connect host=1 " + s2},
	}, {
		name:  "the closing of a service host is not passed over",
		hosts: []string{s1, s2},
		script: []event{
			failed(0, core.ErrClosed, false),
		},
		want: []string{"Connect host=0 " + s1, "Fail"},
		err:  core.ErrClosed,
	}, {
		name:  "the backoff is cut at the deadline, where the lookup fails with its last error",
		cfg:   func(c *lookup.Config) { c.Timeout = 100 * time.Millisecond },
		hosts: []string{s1},
		script: []event{
			failed(0, errNotReady, true),
			tick(75 * time.Millisecond),
			failed(80*time.Millisecond, errNotReady, true),
			tick(100 * time.Millisecond),
		},
		want: []string{"Send host=0 " + s1, "Wait until=75ms", "Send host=0 " + s1, "Wait until=100ms", "Fail"},
		err:  errors.Join(core.ErrServiceNotReady, context.DeadlineExceeded),
	}, {
		name:   "an answer at the deadline is too late",
		cfg:    func(c *lookup.Config) { c.Timeout = time.Second },
		hosts:  []string{s1},
		script: []event{answered(time.Second, connectTo(s1))},
		want:   []string{"Send host=0 " + s1, "Fail"},
		err:    context.DeadlineExceeded,
	}, {
		name:  "cancelled while waiting: the last failure and the cause",
		hosts: []string{s1},
		script: []event{
			failed(0, errNotReady, true),
			cancelled(time.Millisecond, nil, context.Canceled),
		},
		want: []string{"Send host=0 " + s1, "Wait until=75ms", "Fail"},
		err:  errors.Join(core.ErrServiceNotReady, context.Canceled),
	}, {
		name:  "cancelled in flight with nothing retried: the request's own error",
		hosts: []string{s1},
		script: []event{
			cancelled(time.Millisecond, fmt.Errorf("waiting for the connection: %w", context.Canceled), context.Canceled),
		},
		want: []string{"Send host=0 " + s1, "Fail"},
		err:  context.Canceled,
	}, {
		name:  "partitioned metadata: one answer from a service host",
		cfg:   func(c *lookup.Config) { c.Partitions = true },
		hosts: []string{s1, s2},
		script: []event{
			failed(0, errRefused, true),
			connected(0),
			answered(0, lookup.Answer{Partitions: 3, Redirect: true}),
		},
		want: []string{"Connect host=0 " + s1, "Connect host=1 " + s2, "Send host=1 " + s2, "Done " + s2 + " partitions=3"},
	}, {
		name:  "events that do not fit the Action are ignored",
		hosts: []string{s1},
		script: []event{
			connected(0),
			tick(0),
			failed(0, errNotReady, true),
			answered(0, connectTo(s1)),
			connected(time.Millisecond),
			answered(time.Millisecond, connectTo(s2)),
			failed(time.Millisecond, errUnauthorized, false),
			cancelled(time.Minute, nil, context.Canceled),
		},
		want: []string{
			"Send host=0 " + s1, "Send host=0 " + s1, "Send host=0 " + s1,
			"Wait until=75ms", "Wait until=75ms",
			"Wait until=75ms", "Wait until=75ms", "Wait until=75ms", "Fail",
		},
		err: errors.Join(core.ErrServiceNotReady, context.Canceled),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(tc.hosts...)
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			m := lookup.New(t0, cfg)
			got := []string{show(m.Action())}
			for _, ev := range tc.script {
				got = append(got, show(ev.do(m, t0.Add(ev.at))))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("transcript:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			end := m.Action()
			if (end.Kind == lookup.Fail) != (tc.err != nil) {
				t.Fatalf("ends with %v, err %v; want an error matching %v", end.Kind, end.Err, tc.err)
			}
			if tc.err != nil {
				checkErr(t, end.Err, tc.err)
			}
			if m.Redirects() != tc.redirects {
				t.Errorf("Redirects() = %d, want %d", m.Redirects(), tc.redirects)
			}
		})
	}
}

// checkErr checks that err matches want, or each error joined in want.
func checkErr(t *testing.T, err, want error) {
	t.Helper()
	wants := []error{want}
	if j, ok := want.(interface{ Unwrap() []error }); ok {
		wants = j.Unwrap()
	}
	for _, w := range wants {
		if !errors.Is(err, w) {
			t.Errorf("error %q does not match %q", err, w)
		}
	}
}

// TestDeadline: Tick is wanted at the end of a Wait, else at the end of
// the lookup's timeout, and not at all once it ended.
func TestDeadline(t *testing.T) {
	m := lookup.New(t0, config(s1))
	if got := m.Deadline(); !got.Equal(t0.Add(30 * time.Second)) {
		t.Fatalf("in flight: Deadline() = %v, want the timeout's end", got.Sub(t0))
	}
	m.Failed(t0, errNotReady, true)
	if got := m.Deadline(); !got.Equal(t0.Add(75 * time.Millisecond)) {
		t.Fatalf("waiting: Deadline() = %v, want the backoff's end", got.Sub(t0))
	}
	m.Tick(t0.Add(75 * time.Millisecond))
	m.Answered(t0.Add(80*time.Millisecond), connectTo(s1))
	if got := m.Deadline(); !got.IsZero() {
		t.Fatalf("done: Deadline() = %v, want zero", got)
	}

	d := lookup.New(t0, lookup.Config{Hosts: []string{s1}})
	if got := d.Deadline(); !got.Equal(t0.Add(core.DefaultOperationTimeout)) {
		t.Fatalf("default timeout: Deadline() = %v", got.Sub(t0))
	}
	d.Failed(t0, errNotReady, true)
	if got, want := d.Deadline().Sub(t0), core.DefaultBackoffMin*3/4; got != want {
		t.Fatalf("default backoff: waits %v, want %v", got, want)
	}
}
