package oauth2_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// The client this package's tests authenticate as.
const (
	clientID     = "pulsar-app"
	clientSecret = "sup3r-s3cret-v@lue"
	audience     = "urn:pulsar:cluster-1"
)

// idp is an authorization server for the tests: an OpenID Connect discovery
// document and a client credentials token endpoint on httptest, issuing
// access-1, access-2, ... (or a fixed token), each with expiresIn.
type idp struct {
	*httptest.Server

	mu         sync.Mutex
	secret     string        // the client secret it accepts
	expiresIn  int           // seconds; 0 leaves expires_in out
	fixed      string        // if set, the token issued every time
	failWith   int           // if set, refuse with this status
	gate       chan struct{} // if set, token requests wait for it to close
	arrived    chan struct{} // if set, receives a value per token request
	forms      []url.Values  // token requests received
	discovered int           // discovery requests received
}

func newIDP(t *testing.T) *idp {
	t.Helper()
	p := &idp{secret: clientSecret, expiresIn: 100}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.discovered++
		p.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer":         p.URL + "/",
			"token_endpoint": p.URL + "/oauth/token",
		})
	})
	mux.HandleFunc("POST /oauth/token", p.token)
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

func (p *idp) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request"})
		return
	}
	p.mu.Lock()
	p.forms = append(p.forms, r.PostForm)
	n := len(p.forms)
	gate, arrived := p.gate, p.arrived
	secret, expiresIn, fixed, failWith := p.secret, p.expiresIn, p.fixed, p.failWith
	p.mu.Unlock()
	if arrived != nil {
		arrived <- struct{}{}
	}
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}

	switch {
	case failWith != 0:
		// A careless server that quotes the credentials back.
		writeJSON(w, failWith, map[string]any{
			"error":             "invalid_client",
			"error_description": fmt.Sprintf("client %s with secret %s is not allowed", r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")),
		})
		return
	case r.PostForm.Get("grant_type") != "client_credentials":
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "unsupported_grant_type"})
		return
	case r.PostForm.Get("client_id") != clientID || r.PostForm.Get("client_secret") != secret:
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client"})
		return
	}
	body := map[string]any{"access_token": fmt.Sprintf("access-%d", n), "token_type": "Bearer"}
	if fixed != "" {
		body["access_token"] = fixed
	}
	if expiresIn != 0 {
		body["expires_in"] = expiresIn
	}
	writeJSON(w, http.StatusOK, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// tokenURL is the token endpoint.
func (p *idp) tokenURL() string { return p.URL + "/oauth/token" }

// requests returns the number of token requests received.
func (p *idp) requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.forms)
}

// lastForm returns the form of the last token request.
func (p *idp) lastForm() url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.forms) == 0 {
		return nil
	}
	return p.forms[len(p.forms)-1]
}

func (p *idp) set(f func(p *idp)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

// clock is a fake clock for WithClock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
