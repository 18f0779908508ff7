package tls_test

import (
	ctls "crypto/tls"
	"testing"
	"time"

	"github.com/pulsarconn/pulsarconn/internal/testenv"
)

// pki is the set of certificates the tests use.
type pki struct {
	ca, otherCA *testenv.Authority
	server      ctls.Certificate // for localhost and 127.0.0.1, signed by ca
	untrusted   ctls.Certificate // as server, signed by otherCA
	otherName   ctls.Certificate // for broker.example only, signed by ca
	expired     ctls.Certificate // as server, expired yesterday
	client      ctls.Certificate // client certificate signed by ca
	rogueClient ctls.Certificate // client certificate signed by otherCA
}

// newPKI makes a fresh pki.
func newPKI(t *testing.T) *pki {
	t.Helper()
	ca, other := testenv.NewAuthority(t, "test CA"), testenv.NewAuthority(t, "other CA")
	local := []string{"localhost", "127.0.0.1"}
	now := time.Now()
	return &pki{
		ca:          ca,
		otherCA:     other,
		server:      ca.Issue(t, testenv.Leaf{Names: local}),
		untrusted:   other.Issue(t, testenv.Leaf{Names: local}),
		otherName:   ca.Issue(t, testenv.Leaf{Names: []string{"broker.example"}}),
		expired:     ca.Issue(t, testenv.Leaf{Names: local, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}),
		client:      ca.Issue(t, testenv.Leaf{Client: true}),
		rogueClient: other.Issue(t, testenv.Leaf{Client: true}),
	}
}
