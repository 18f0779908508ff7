package pulsarconn

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
)

// Default ports of the Pulsar binary protocol.
const (
	DefaultPort    = 6650
	DefaultTLSPort = 6651
)

// ErrInvalidURL is returned for a service URL that is not pulsar:// or
// pulsar+ssl:// with a host.
var ErrInvalidURL = errors.New("pulsarconn: invalid URL")

// BrokerAddress is a parsed broker service URL.
type BrokerAddress struct {
	// URL is the canonical form: scheme, host and an explicit port, e.g.
	// "pulsar://broker-1:6650".
	URL string
	// HostPort is what is dialled, e.g. "broker-1:6650".
	HostPort string
	// Host is the host name alone, e.g. "broker-1" (the TLS server name).
	Host string
	// TLS is true for pulsar+ssl://.
	TLS bool
}

// ParseURL parses a broker service URL: pulsar://host[:port] (port 6650 by
// default) or pulsar+ssl://host[:port] (port 6651 by default). Any other
// scheme, a missing host, a bad port, or a path, query, fragment or user
// info is an error matching ErrInvalidURL.
func ParseURL(raw string) (BrokerAddress, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return BrokerAddress{}, fmt.Errorf("%w %q: %v", ErrInvalidURL, raw, err)
	}
	var port int
	var secure bool
	switch u.Scheme {
	case "pulsar":
		port = DefaultPort
	case "pulsar+ssl":
		port, secure = DefaultTLSPort, true
	default:
		return BrokerAddress{}, fmt.Errorf("%w %q: scheme must be pulsar:// or pulsar+ssl://", ErrInvalidURL, raw)
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return BrokerAddress{}, fmt.Errorf("%w %q: only scheme, host and port are allowed", ErrInvalidURL, raw)
	}
	host := u.Hostname()
	if host == "" {
		return BrokerAddress{}, fmt.Errorf("%w %q: no host", ErrInvalidURL, raw)
	}
	if !validHost(host) {
		return BrokerAddress{}, fmt.Errorf("%w %q: bad host %q (one host per Broker)", ErrInvalidURL, raw, host)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return BrokerAddress{}, fmt.Errorf("%w %q: bad port %q", ErrInvalidURL, raw, p)
		}
		port = n
	}
	hostPort := net.JoinHostPort(host, strconv.Itoa(port))
	return BrokerAddress{URL: u.Scheme + "://" + hostPort, HostPort: hostPort, Host: host, TLS: secure}, nil
}

// validHost accepts an IP address or a DNS name of letters, digits, '-',
// '_' and '.'.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return false
		}
	}
	return true
}
