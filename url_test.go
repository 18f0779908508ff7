package pulsarconn_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
)

func TestParseURL(t *testing.T) {
	good := []struct {
		in   string
		want pulsarconn.BrokerAddress
	}{
		{"pulsar://broker", pulsarconn.BrokerAddress{URL: "pulsar://broker:6650", HostPort: "broker:6650", Host: "broker"}},
		{"pulsar://broker:7000", pulsarconn.BrokerAddress{URL: "pulsar://broker:7000", HostPort: "broker:7000", Host: "broker"}},
		{"pulsar://broker:6650/", pulsarconn.BrokerAddress{URL: "pulsar://broker:6650", HostPort: "broker:6650", Host: "broker"}},
		{"pulsar+ssl://broker", pulsarconn.BrokerAddress{URL: "pulsar+ssl://broker:6651", HostPort: "broker:6651", Host: "broker", TLS: true}},
		{"pulsar+ssl://broker:443", pulsarconn.BrokerAddress{URL: "pulsar+ssl://broker:443", HostPort: "broker:443", Host: "broker", TLS: true}},
		{"pulsar://[::1]", pulsarconn.BrokerAddress{URL: "pulsar://[::1]:6650", HostPort: "[::1]:6650", Host: "::1"}},
		{"pulsar://127.0.0.1:6650", pulsarconn.BrokerAddress{URL: "pulsar://127.0.0.1:6650", HostPort: "127.0.0.1:6650", Host: "127.0.0.1"}},
	}
	for _, tc := range good {
		got, err := pulsarconn.ParseURL(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
	bad := []string{
		"", "broker:6650", "http://broker", "pulsar+tls://broker", "PULSAR ://x",
		"pulsar://", "pulsar://:6650", "pulsar://broker:abc", "pulsar://broker:0", "pulsar://broker:65536",
		"pulsar://broker/path", "pulsar://broker?x=1", "pulsar://broker#f", "pulsar://user:pw@broker",
		"pulsar://h1:6650,h2:6650",
	}
	for _, in := range bad {
		_, err := pulsarconn.ParseURL(in)
		assert.ErrorIs(t, err, pulsarconn.ErrInvalidURL, "%q", in)
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"pulsar://broker", "pulsar+ssl://b:1", "pulsar://[::1]:6650", "http://x", "pulsar://h1,h2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		a, err := pulsarconn.ParseURL(in)
		if err != nil {
			assert.ErrorIs(t, err, pulsarconn.ErrInvalidURL)
			return
		}
		// A parsed URL is canonical: parsing it again gives the same.
		again, err := pulsarconn.ParseURL(a.URL)
		require.NoError(t, err, "canonical form %q of %q", a.URL, in)
		assert.Equal(t, a, again)
	})
}
