// Package lookup is the Client's topic lookup as a sans-I/O state machine:
// which service host to ask, which broker a Redirect answer sends it to
// (with the authoritative flag, through the service URL when the answer
// says proxy_through_service_url), how many redirects it follows, and
// when to retry after a backoff — with time as a value, like core.Conn.
//
// A Machine performs no I/O and never reads a clock. The driver creates
// one per lookup with New, carries out its Action, reports what came of it
// (Connected, Answered, Failed, Cancelled when the caller's context ends,
// Tick when the time of Deadline comes), and carries out the Action each
// of those returns, until it is Done or Fail.
//
// Service hosts: with one, each try asks it at once (the driver's
// connection waits to be connected). With several, each try first has the
// driver Connect to a host and waits for that connection attempt: a host
// whose attempt fails is passed over for the next at once, round robin
// from Config.First, so that a host down costs at most one connect
// timeout; when every host failed its attempt, the try fails with an error
// matching core.ErrDisconnected and is retried after a backoff, from the
// next host on.
package lookup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pulsarconn/pulsarconn/core"
)

// ErrTooManyRedirects: a lookup was redirected more often than
// Config.MaxRedirects allows.
var ErrTooManyRedirects = errors.New("pulsarconn: too many lookup redirects")

// Kind is what an Action asks of the driver.
type Kind int

// The kinds of Action.
const (
	// Connect: wait until the connection to service host Host (URL
	// Target) is connected, then call Connected, or until its attempt
	// fails, then call Failed.
	Connect Kind = iota + 1
	// Send: send the lookup (or the partitioned-metadata request) to
	// Target — dialling Proxy and naming Target as the proxy target when
	// Proxy is set — with Authoritative; then call Answered or Failed.
	Send
	// Wait: nothing to do until Until (a backoff); then call Tick.
	Wait
	// Done: the lookup is over: Target (reached through Proxy, when set)
	// owns the topic; for partitioned metadata, Partitions is the answer.
	Done
	// Fail: the lookup failed with Err.
	Fail
)

var kindNames = [...]string{Connect: "Connect", Send: "Send", Wait: "Wait", Done: "Done", Fail: "Fail"}

// String returns the kind's name.
func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Action is the next thing for the driver to do.
type Action struct {
	Kind Kind
	// Host is the index in Config.Hosts of the service host that Target
	// is (Connect, and Send to a service host), else -1.
	Host int
	// Target is the broker URL to connect to or ask (Connect, Send), or
	// the owner found (Done).
	Target string
	// Proxy, when set, is the service host URL to dial instead of
	// Target, naming Target as the proxy target (Send, Done).
	Proxy string
	// Authoritative is the flag to send with the lookup (Send).
	Authoritative bool
	// Redirect is true for a Send that follows a Redirect answer.
	Redirect bool
	// Until is when to call Tick (Wait).
	Until time.Time
	// Partitions is the partitioned-metadata answer (Done).
	Partitions int
	// Err is why the lookup failed (Fail).
	Err error
}

// Answer is a broker's answer to a Send.
type Answer struct {
	// BrokerURL and BrokerURLTLS are the broker to connect to, or to ask
	// again when Redirect is set.
	BrokerURL, BrokerURLTLS string
	// Redirect, Authoritative and ProxyThroughServiceURL are the
	// LOOKUP_RESPONSE's: a Redirect answer is followed with its
	// Authoritative flag; ProxyThroughServiceURL keeps the connection on
	// the service host, naming the broker as the proxy target.
	Redirect, Authoritative, ProxyThroughServiceURL bool
	// Partitions is a partitioned-metadata answer.
	Partitions int
}

// Config describes one lookup.
type Config struct {
	// Topic is the topic looked up (it appears in errors).
	Topic string
	// Partitions asks a service host for the topic's partitioned metadata
	// instead of its owner: one answer ends it, with no redirects.
	Partitions bool
	// Hosts are the service hosts' URLs; at least one.
	Hosts []string
	// First is the index of the host to ask first (taken modulo
	// len(Hosts)), so that lookups take turns over the hosts.
	First int
	// TLS picks the answers' BrokerURLTLS instead of BrokerURL.
	TLS bool
	// MaxRedirects is how many Redirect answers are followed; one more
	// fails the lookup with ErrTooManyRedirects.
	MaxRedirects int
	// Timeout bounds the whole lookup, retries included. Default:
	// core.DefaultOperationTimeout.
	Timeout time.Duration
	// Backoff spaces retries. Default: a core.Backoff with
	// core.DefaultBackoffMin and core.DefaultBackoffMax.
	Backoff core.BackoffPolicy
}

// Machine is one lookup in progress. It is not safe for concurrent use.
type Machine struct {
	cfg       Config
	deadline  time.Time
	act       Action
	tries     int     // service hosts picked so far
	host      int     // the service host of the current try
	refused   []error // this try's failed connection attempts
	redirects int     // Redirect answers followed in this try
	last      error   // the last retryable failure
}

// New starts a lookup at now; Action returns what to do first. It panics
// if cfg names no service host.
func New(now time.Time, cfg Config) *Machine {
	if len(cfg.Hosts) == 0 {
		panic("lookup: no service hosts")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = core.DefaultOperationTimeout
	}
	if cfg.Backoff == nil {
		cfg.Backoff = &core.Backoff{Min: core.DefaultBackoffMin, Max: core.DefaultBackoffMax}
	}
	m := &Machine{cfg: cfg, deadline: now.Add(cfg.Timeout)}
	m.try()
	return m
}

// Action returns what the driver is to do now.
func (m *Machine) Action() Action { return m.act }

// Redirects returns how many Redirect answers the current (or last) try
// followed.
func (m *Machine) Redirects() int { return m.redirects }

// Deadline returns when Tick is to be called: the end of a Wait, else the
// end of the lookup's Timeout; zero once it is Done or Fail.
func (m *Machine) Deadline() time.Time {
	switch m.act.Kind {
	case Wait:
		return m.act.Until
	case Done, Fail:
		return time.Time{}
	}
	return m.deadline
}

// try starts a try at the next service host.
func (m *Machine) try() {
	m.refused, m.redirects = nil, 0
	m.pickHost()
}

// pickHost asks the next service host, round robin.
func (m *Machine) pickHost() {
	n := len(m.cfg.Hosts)
	m.host = ((m.cfg.First+m.tries)%n + n) % n
	m.tries++
	kind := Send
	if n > 1 {
		kind = Connect
	}
	m.act = Action{Kind: kind, Host: m.host, Target: m.cfg.Hosts[m.host]}
}

// busy reports whether the machine's Action is of one of kinds, so that
// an event about it applies; at or after the deadline it ends the lookup
// instead.
func (m *Machine) busy(now time.Time, kinds ...Kind) bool {
	if m.act.Kind == Done || m.act.Kind == Fail {
		return false
	}
	if !now.Before(m.deadline) {
		m.end(nil, context.DeadlineExceeded)
		return false
	}
	return slices.Contains(kinds, m.act.Kind)
}

// Connected reports that the service host of a Connect is connected.
func (m *Machine) Connected(now time.Time) Action {
	if m.busy(now, Connect) {
		m.act = Action{Kind: Send, Host: m.host, Target: m.act.Target}
	}
	return m.act
}

// Answered reports the answer to a Send.
func (m *Machine) Answered(now time.Time, a Answer) Action {
	if !m.busy(now, Send) {
		return m.act
	}
	if m.cfg.Partitions {
		m.act = Action{Kind: Done, Host: -1, Target: m.act.Target, Partitions: a.Partitions}
		return m.act
	}
	url := a.BrokerURL
	if m.cfg.TLS {
		if url = a.BrokerURLTLS; url == "" {
			m.fail(fmt.Errorf("%w: lookup of %s named no TLS broker URL", core.ErrProtocol, m.cfg.Topic))
			return m.act
		}
	}
	var proxy string
	if a.ProxyThroughServiceURL {
		proxy = m.cfg.Hosts[m.host]
	}
	switch {
	case !a.Redirect:
		m.act = Action{Kind: Done, Host: -1, Target: url, Proxy: proxy}
	case m.redirects >= m.cfg.MaxRedirects:
		m.fail(fmt.Errorf("%w: %s redirected more than %d times (last to %s)",
			ErrTooManyRedirects, m.cfg.Topic, m.cfg.MaxRedirects, url))
	default:
		m.redirects++
		m.act = Action{Kind: Send, Host: -1, Target: url, Proxy: proxy, Authoritative: a.Authoritative, Redirect: true}
	}
	return m.act
}

// Failed reports that a Connect's attempt or a Send failed with err;
// retryable says whether a later try may succeed. A failed Connect passes
// to the next service host, until every host of the try has failed.
func (m *Machine) Failed(now time.Time, err error, retryable bool) Action {
	kind := m.act.Kind
	if !m.busy(now, Connect, Send) {
		return m.act
	}
	switch {
	case !retryable:
		m.fail(err)
	case kind == Connect:
		if m.refused = append(m.refused, err); len(m.refused) < len(m.cfg.Hosts) {
			m.pickHost()
			break
		}
		// ErrDisconnected makes it retryable: the hosts are tried again
		// after a backoff.
		m.retry(now, fmt.Errorf("%w: no service host reachable: %w", core.ErrDisconnected, errors.Join(m.refused...)))
	default:
		m.retry(now, err)
	}
	return m.act
}

// retry waits a backoff, no later than the deadline, after the retryable
// failure err.
func (m *Machine) retry(now time.Time, err error) {
	m.last = err
	until := now.Add(m.cfg.Backoff.Next())
	if until.After(m.deadline) {
		until = m.deadline
	}
	m.act = Action{Kind: Wait, Host: -1, Until: until}
}

// Tick reports that the time of Deadline has come: a Wait ends with the
// next try, and at the lookup's deadline the lookup fails, with the last
// retryable failure and context.DeadlineExceeded.
func (m *Machine) Tick(now time.Time) Action {
	if m.busy(now, Wait) && !now.Before(m.act.Until) {
		m.try()
	}
	return m.act
}

// Cancelled reports that the lookup's context ended with cause, while
// waiting, or while a Connect or Send was in flight, which then failed
// with err (nil if none).
func (m *Machine) Cancelled(now time.Time, err, cause error) Action {
	if m.act.Kind != Done && m.act.Kind != Fail {
		m.end(err, cause)
	}
	return m.act
}

// end fails the lookup because its time is up (cause), reporting the last
// real failure along with why retrying stopped.
func (m *Machine) end(err, cause error) {
	if err == nil || (m.last != nil && errors.Is(err, cause)) {
		err = m.last
	}
	if err == nil {
		err = cause
	}
	if !errors.Is(err, cause) {
		err = fmt.Errorf("%w (retries ended: %w)", err, cause)
	}
	m.fail(err)
}

func (m *Machine) fail(err error) { m.act = Action{Kind: Fail, Host: -1, Err: err} }
