package oauth2_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/adapters/auth/internal/authtest"
	"github.com/pulsarconn/pulsarconn/adapters/auth/oauth2"
)

// refresh is the auth_data of the AUTH_CHALLENGE with which a broker asks a
// live connection for fresh credentials.
var refresh = []byte("PulsarAuthRefresh")

// newAuth returns an Authenticator for p's token endpoint on clk.
func newAuth(t *testing.T, p *idp, clk *clock, opts ...oauth2.Option) *oauth2.Authenticator {
	t.Helper()
	a, err := oauth2.New(oauth2.Config{
		TokenURL:     p.tokenURL(),
		ClientID:     clientID,
		ClientSecret: clientSecret,
		Audience:     audience,
		Scopes:       []string{"pulsar:produce", "pulsar:consume"},
	}, append([]oauth2.Option{oauth2.WithClock(clk.Now), oauth2.WithHTTPClient(p.Client())}, opts...)...)
	require.NoError(t, err)
	return a
}

func initial(t *testing.T, a *oauth2.Authenticator) string {
	t.Helper()
	b, err := a.Initial(authtest.Context(t))
	require.NoError(t, err)
	return string(b)
}

func challenge(t *testing.T, a *oauth2.Authenticator) string {
	t.Helper()
	b, err := a.Challenge(authtest.Context(t), refresh)
	require.NoError(t, err)
	return string(b)
}

// TestFirstFetch: the first Initial sends one client credentials request,
// with the credentials, audience and scope in the form body, and presents
// the access token under the method "token".
func TestFirstFetch(t *testing.T) {
	p := newIDP(t)
	a := newAuth(t, p, newClock())
	assert.Equal(t, "token", a.Name())
	assert.Equal(t, 0, p.requests(), "New sends no request")

	assert.Equal(t, "access-1", initial(t, a))
	require.Equal(t, 1, p.requests())
	form := p.lastForm()
	assert.Equal(t, "client_credentials", form.Get("grant_type"))
	assert.Equal(t, clientID, form.Get("client_id"))
	assert.Equal(t, clientSecret, form.Get("client_secret"))
	assert.Equal(t, audience, form.Get("audience"))
	assert.Equal(t, "pulsar:produce pulsar:consume", form.Get("scope"))
}

func TestNoAudienceNoScope(t *testing.T) {
	p := newIDP(t)
	a, err := oauth2.New(oauth2.Config{TokenURL: p.tokenURL(), ClientID: clientID, ClientSecret: clientSecret},
		oauth2.WithHTTPClient(p.Client()))
	require.NoError(t, err)
	assert.Equal(t, "access-1", initial(t, a))
	assert.NotContains(t, p.lastForm(), "audience")
	assert.NotContains(t, p.lastForm(), "scope")
}

// TestCacheHit: until its refresh point, the token is reused by Initial
// and Challenge alike.
func TestCacheHit(t *testing.T) {
	p := newIDP(t)
	clk := newClock()
	a := newAuth(t, p, clk)
	assert.Equal(t, "access-1", initial(t, a))
	clk.Advance(30 * time.Second)
	assert.Equal(t, "access-1", initial(t, a))
	assert.Equal(t, "access-1", challenge(t, a))
	assert.Equal(t, 1, p.requests())
}

// TestRefreshBeforeExpiry: the token is replaced at its refresh point,
// before it expires: with the default margin, 10% of its lifetime but at
// most 60 s; with WithRefreshMargin, the margin given, at most half the
// lifetime.
func TestRefreshBeforeExpiry(t *testing.T) {
	tests := []struct {
		name      string
		expiresIn int
		opts      []oauth2.Option
		refreshAt time.Duration // after the first request
	}{
		{name: "default, short-lived: 10%", expiresIn: 100, refreshAt: 90 * time.Second},
		{name: "default, long-lived: 60 s", expiresIn: 3600, refreshAt: 59 * time.Minute},
		{name: "margin 5m", expiresIn: 3600, opts: []oauth2.Option{oauth2.WithRefreshMargin(5 * time.Minute)}, refreshAt: 55 * time.Minute},
		{name: "margin capped at half", expiresIn: 100, opts: []oauth2.Option{oauth2.WithRefreshMargin(time.Hour)}, refreshAt: 50 * time.Second},
		{name: "margin zero", expiresIn: 100, opts: []oauth2.Option{oauth2.WithRefreshMargin(0)}, refreshAt: 100 * time.Second},
		{name: "negative margin: default", expiresIn: 100, opts: []oauth2.Option{oauth2.WithRefreshMargin(-1)}, refreshAt: 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newIDP(t)
			p.set(func(p *idp) { p.expiresIn = tt.expiresIn })
			clk := newClock()
			a := newAuth(t, p, clk, tt.opts...)
			assert.Equal(t, "access-1", initial(t, a))

			clk.Advance(tt.refreshAt - time.Millisecond)
			assert.Equal(t, "access-1", initial(t, a), "just before the refresh point")
			assert.Equal(t, 1, p.requests())

			clk.Advance(time.Millisecond)
			assert.Equal(t, "access-2", initial(t, a), "at the refresh point")
			assert.Equal(t, 2, p.requests())
			assert.Equal(t, "access-2", challenge(t, a), "and cached again")
			assert.Equal(t, 2, p.requests())
		})
	}
}

// TestChallengeAfterExpiry: the broker's refresh challenge after the token
// expired gets a new one.
func TestChallengeAfterExpiry(t *testing.T) {
	p := newIDP(t)
	clk := newClock()
	a := newAuth(t, p, clk)
	assert.Equal(t, "access-1", initial(t, a))
	clk.Advance(101 * time.Second)
	assert.Equal(t, "access-2", challenge(t, a))
	assert.Equal(t, 2, p.requests())
}

// TestUnknownLifetime: a response without expires_in gives a token that is
// reused for CONNECT but replaced on every challenge, the only sign of its
// expiry.
func TestUnknownLifetime(t *testing.T) {
	p := newIDP(t)
	p.set(func(p *idp) { p.expiresIn = 0 })
	clk := newClock()
	a := newAuth(t, p, clk)
	assert.Equal(t, "access-1", initial(t, a))
	clk.Advance(24 * time.Hour)
	assert.Equal(t, "access-1", initial(t, a))
	assert.Equal(t, "access-2", challenge(t, a))
	assert.Equal(t, "access-3", challenge(t, a))
	assert.Equal(t, 3, p.requests())
}

// TestConcurrentInitial: callers that arrive while a token request is in
// flight wait for it instead of sending their own.
func TestConcurrentInitial(t *testing.T) {
	p := newIDP(t)
	gate, arrived := make(chan struct{}), make(chan struct{}, 10)
	p.set(func(p *idp) { p.gate, p.arrived = gate, arrived })
	a := newAuth(t, p, newClock())
	ctx := authtest.Context(t)

	const callers = 16
	results := make(chan string, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			var b []byte
			var err error
			if i%2 == 0 {
				b, err = a.Initial(ctx)
			} else {
				b, err = a.Challenge(ctx, refresh)
			}
			assert.NoError(t, err)
			results <- string(b)
		})
	}
	select {
	case <-arrived:
	case <-ctx.Done():
		t.Fatal("no token request")
	}
	close(gate)
	wg.Wait()
	close(results)
	for got := range results {
		assert.Equal(t, "access-1", got)
	}
	assert.Equal(t, 1, p.requests())
}

// TestWaiterOutlivesCanceledRequester: the caller whose request is in
// flight gives up (its context ends); the request is abandoned, and the
// next caller sends its own.
func TestWaiterOutlivesCanceledRequester(t *testing.T) {
	p := newIDP(t)
	gate, arrived := make(chan struct{}), make(chan struct{}, 10)
	p.set(func(p *idp) { p.gate, p.arrived = gate, arrived })
	a := newAuth(t, p, newClock())

	ctx, cancel := context.WithCancel(authtest.Context(t))
	errc := make(chan error, 1)
	go func() {
		_, err := a.Initial(ctx)
		errc <- err
	}()
	<-arrived
	cancel()
	err := <-errc
	require.ErrorIs(t, err, context.Canceled, "Initial honours its context")
	require.ErrorIs(t, err, oauth2.ErrTokenFetch)

	close(gate)
	assert.Equal(t, "access-2", initial(t, a), "a later caller fetches afresh")
}

// TestEndpointError: a refusal is an ErrTokenFetch carrying a *TokenError;
// neither holds the client secret, even though the server echoed it.
func TestEndpointError(t *testing.T) {
	p := newIDP(t)
	p.set(func(p *idp) { p.failWith = http.StatusUnauthorized })
	a := newAuth(t, p, newClock())

	_, err := a.Initial(authtest.Context(t))
	require.ErrorIs(t, err, oauth2.ErrTokenFetch)
	var te *oauth2.TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, http.StatusUnauthorized, te.StatusCode)
	assert.Equal(t, "invalid_client", te.Code)
	assert.Contains(t, te.Description, "[redacted]")
	assert.Contains(t, err.Error(), "invalid_client")
	authtest.NoSecretInErrors(t, clientSecret, err)
	authtest.NoSecretPrinted(t, clientSecret, err)

	_, err = a.Challenge(authtest.Context(t), refresh)
	require.ErrorIs(t, err, oauth2.ErrTokenFetch, "nothing cached: the challenge fails too")
	assert.Equal(t, 2, p.requests(), "a failure is not cached")
}

// TestWrongSecret: the server refuses without quoting anything.
func TestWrongSecret(t *testing.T) {
	p := newIDP(t)
	p.set(func(p *idp) { p.secret = "the-right-one" })
	a := newAuth(t, p, newClock())
	_, err := a.Initial(authtest.Context(t))
	var te *oauth2.TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, http.StatusUnauthorized, te.StatusCode)
	authtest.NoSecretInErrors(t, clientSecret, err)
}

func TestUnreachableEndpoint(t *testing.T) {
	p := newIDP(t)
	a := newAuth(t, p, newClock())
	p.Close()
	_, err := a.Initial(authtest.Context(t))
	require.ErrorIs(t, err, oauth2.ErrTokenFetch)
	authtest.NoSecretInErrors(t, clientSecret, err)
}

// TestFailedEarlyRefreshKeepsToken: a refresh that fails before the
// cached token expires hands out the cached token; after expiry, the
// failure is reported.
func TestFailedEarlyRefreshKeepsToken(t *testing.T) {
	p := newIDP(t)
	clk := newClock()
	a := newAuth(t, p, clk)
	assert.Equal(t, "access-1", initial(t, a))

	p.set(func(p *idp) { p.failWith = http.StatusServiceUnavailable })
	clk.Advance(95 * time.Second) // past the refresh point, before expiry
	assert.Equal(t, "access-1", challenge(t, a))
	assert.Equal(t, 2, p.requests(), "a refresh was tried")
	assert.Equal(t, "access-1", initial(t, a))
	assert.Equal(t, 3, p.requests(), "and is tried again on the next call")

	clk.Advance(5 * time.Second) // expired
	_, err := a.Challenge(authtest.Context(t), refresh)
	require.ErrorIs(t, err, oauth2.ErrTokenFetch)
	authtest.NoSecretInErrors(t, "access-1", err)

	p.set(func(p *idp) { p.failWith = 0 })
	assert.Equal(t, "access-5", challenge(t, a))
}

// TestDiscovery: with IssuerURL, the token endpoint is looked up once in
// the issuer's OpenID Connect discovery document.
func TestDiscovery(t *testing.T) {
	p := newIDP(t)
	clk := newClock()
	a, err := oauth2.New(oauth2.Config{
		IssuerURL:    p.URL + "/",
		ClientID:     clientID,
		ClientSecret: clientSecret,
		Audience:     audience,
	}, oauth2.WithClock(clk.Now), oauth2.WithHTTPClient(p.Client()))
	require.NoError(t, err)
	assert.Equal(t, "access-1", initial(t, a))
	clk.Advance(time.Hour)
	assert.Equal(t, "access-2", challenge(t, a))
	p.mu.Lock()
	defer p.mu.Unlock()
	assert.Equal(t, 1, p.discovered)
}

func TestDiscoveryFailure(t *testing.T) {
	p := newIDP(t)
	a, err := oauth2.New(oauth2.Config{IssuerURL: p.URL + "/nowhere", ClientID: clientID, ClientSecret: clientSecret},
		oauth2.WithHTTPClient(p.Client()))
	require.NoError(t, err)
	_, err = a.Initial(authtest.Context(t))
	require.ErrorIs(t, err, oauth2.ErrTokenFetch)
	assert.Contains(t, err.Error(), "discovering the token endpoint")
	assert.Contains(t, err.Error(), "404")
	assert.Equal(t, 0, p.requests())
}

// writeKeyFile writes a Pulsar credentials file and returns its path.
func writeKeyFile(t *testing.T, path string, fields map[string]string) string {
	t.Helper()
	b, err := json.Marshal(fields)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// TestFromKeyFile: credentials and issuer come from the key file, which is
// read again for every token request, so a rotated secret is used.
func TestFromKeyFile(t *testing.T) {
	p := newIDP(t)
	clk := newClock()
	path := writeKeyFile(t, filepath.Join(t.TempDir(), "credentials.json"), map[string]string{
		"type":          "client_credentials",
		"client_id":     clientID,
		"client_secret": clientSecret,
		"client_email":  "app@example.com",
		"issuer_url":    p.URL,
	})
	a, err := oauth2.FromKeyFile("file://"+path, audience, "pulsar:produce  pulsar:consume",
		oauth2.WithClock(clk.Now), oauth2.WithHTTPClient(p.Client()))
	require.NoError(t, err)

	assert.Equal(t, "access-1", initial(t, a))
	form := p.lastForm()
	assert.Equal(t, clientID, form.Get("client_id"))
	assert.Equal(t, clientSecret, form.Get("client_secret"))
	assert.Equal(t, audience, form.Get("audience"))
	assert.Equal(t, "pulsar:produce pulsar:consume", form.Get("scope"))

	const rotated = "r0tated-s3cret"
	p.set(func(p *idp) { p.secret = rotated })
	writeKeyFile(t, path, map[string]string{"client_id": clientID, "client_secret": rotated, "issuer_url": p.URL})
	clk.Advance(time.Hour)
	assert.Equal(t, "access-2", challenge(t, a))
	assert.Equal(t, rotated, p.lastForm().Get("client_secret"))

	require.NoError(t, os.Remove(path))
	clk.Advance(time.Hour)
	_, err = a.Challenge(authtest.Context(t), refresh)
	require.ErrorIs(t, err, oauth2.ErrKeyFile)
	require.ErrorIs(t, err, fs.ErrNotExist)
	authtest.NoSecretInErrors(t, rotated, err)
}

// TestNewValidates: configurations that cannot work are refused up front,
// without a secret in the error.
func TestNewValidates(t *testing.T) {
	dir := t.TempDir()
	good := writeKeyFile(t, filepath.Join(dir, "good.json"), map[string]string{
		"client_id": clientID, "client_secret": clientSecret, "issuer_url": "https://auth.example.com"})
	noIssuer := writeKeyFile(t, filepath.Join(dir, "no-issuer.json"), map[string]string{
		"client_id": clientID, "client_secret": clientSecret})
	noSecret := writeKeyFile(t, filepath.Join(dir, "no-secret.json"), map[string]string{"client_id": clientID})
	garbled := filepath.Join(dir, "garbled.json")
	require.NoError(t, os.WriteFile(garbled, []byte(`{"client_id": "x", "client_secret": "`+clientSecret+`",`), 0o600))
	missing := filepath.Join(dir, "missing.json")

	const tokenURL = "https://auth.example.com/oauth/token"
	tests := []struct {
		name    string
		cfg     oauth2.Config
		wantErr error
		wantMsg string
	}{
		{"no client", oauth2.Config{TokenURL: tokenURL}, oauth2.ErrConfig, "no ClientID"},
		{"no secret", oauth2.Config{TokenURL: tokenURL, ClientID: clientID}, oauth2.ErrConfig, "no ClientSecret"},
		{"no endpoint", oauth2.Config{ClientID: clientID, ClientSecret: clientSecret}, oauth2.ErrConfig, "no TokenURL or IssuerURL"},
		{"bad scheme", oauth2.Config{TokenURL: "ftp://auth.example.com", ClientID: clientID, ClientSecret: clientSecret}, oauth2.ErrConfig, "scheme"},
		{"relative", oauth2.Config{IssuerURL: "/issuer", ClientID: clientID, ClientSecret: clientSecret}, oauth2.ErrConfig, "IssuerURL"},
		{"secret in URL", oauth2.Config{TokenURL: "https://app:" + clientSecret + "@auth.example.com", ClientID: clientID, ClientSecret: clientSecret}, oauth2.ErrConfig, "credentials in the URL"},
		{"key file and client", oauth2.Config{KeyFile: good, ClientID: clientID}, oauth2.ErrConfig, "not both"},
		{"key file without issuer", oauth2.Config{KeyFile: noIssuer}, oauth2.ErrConfig, "no issuer_url"},
		{"key file without secret", oauth2.Config{KeyFile: noSecret}, oauth2.ErrKeyFile, "no client_secret"},
		{"garbled key file", oauth2.Config{KeyFile: garbled}, oauth2.ErrKeyFile, "not valid JSON"},
		{"missing key file", oauth2.Config{KeyFile: missing}, fs.ErrNotExist, missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := oauth2.New(tt.cfg)
			assert.Nil(t, a)
			require.ErrorIs(t, err, tt.wantErr)
			assert.Contains(t, err.Error(), tt.wantMsg)
			authtest.NoSecretInErrors(t, clientSecret, err)
		})
	}

	// And what does work.
	for _, cfg := range []oauth2.Config{
		{TokenURL: tokenURL, ClientID: clientID, ClientSecret: clientSecret},
		{IssuerURL: "https://auth.example.com", ClientID: clientID, ClientSecret: clientSecret},
		{KeyFile: good},
		{KeyFile: "file:" + good},
		{KeyFile: noIssuer, TokenURL: tokenURL},
	} {
		_, err := oauth2.New(cfg)
		assert.NoError(t, err, "%+v", cfg)
	}
	_, err := oauth2.FromKeyFile(noIssuer, audience, "")
	assert.ErrorIs(t, err, oauth2.ErrConfig)
}

// TestNoSecretPrinted: the Authenticator, by pointer or by value and with
// any verb, shows neither the client secret nor the cached access token.
func TestNoSecretPrinted(t *testing.T) {
	p := newIDP(t)
	p.set(func(p *idp) { p.fixed = "the-access-token" })
	a := newAuth(t, p, newClock())
	assert.Equal(t, "the-access-token", initial(t, a))
	authtest.NoSecretPrinted(t, clientSecret, a)
	authtest.NoSecretPrinted(t, "the-access-token", a)
	cfg := oauth2.Config{TokenURL: p.tokenURL(), ClientID: clientID, ClientSecret: clientSecret}
	// A Config is the caller's plain struct: only printing it directly
	// can be made safe.
	for _, v := range []any{cfg, &cfg} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			assert.NotContains(t, fmt.Sprintf(verb, v), clientSecret, verb)
		}
	}
	assert.Contains(t, cfg.String(), `ClientSecret: "[redacted]"`)
	assert.Equal(t,
		`oauth2.Authenticator{client_id: "pulsar-app", token_url: "`+p.tokenURL()+`", audience: "urn:pulsar:cluster-1", scope: "pulsar:produce pulsar:consume"}`,
		a.String())
}

func TestCanceledContext(t *testing.T) {
	p := newIDP(t)
	a := newAuth(t, p, newClock())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := a.Initial(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	_, err = a.Challenge(ctx, refresh)
	assert.True(t, errors.Is(err, context.Canceled))
	assert.Equal(t, 0, p.requests())
}
