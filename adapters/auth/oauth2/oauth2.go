// Package oauth2 is the Authenticator for Pulsar's OAuth 2.0 authentication:
// it obtains an access token from an authorization server with the client
// credentials grant (RFC 6749 section 4.4) and presents it to the broker
// under the auth method name "token", as the OAuth2 plugins of Pulsar's
// Java and Go clients do; the broker checks it with its token provider.
//
// # Token request
//
// The request is an HTTP POST to the token endpoint with
// grant_type=client_credentials, client_id and client_secret in the form
// body (as Pulsar's clients send them), "audience" when Config.Audience is
// set (the OAuth2 "resource server" identifier of the Pulsar cluster; Auth0
// and others require it) and "scope" when Config.Scopes is. The endpoint is
// Config.TokenURL or, failing that, the "token_endpoint" of the issuer's
// OpenID Connect discovery document, IssuerURL +
// "/.well-known/openid-configuration", fetched once.
//
// # Caching and refresh
//
// The token is cached and reused until its refresh point: expires_in
// seconds after the request was sent, less a margin. The default margin is
// 10% of the token's lifetime or 60 s, whichever is less (a one-hour token
// is refreshed after 59 minutes, a 100-second one after 90 s);
// [WithRefreshMargin] changes it. Concurrent callers share one request. A
// refresh that fails while the cached token has not yet expired returns the
// cached token, and the next call tries again; once it has expired, the
// error is returned.
//
// A broker asks a live connection for fresh credentials with AUTH_CHALLENGE
// "PulsarAuthRefresh" when the token it accepted expires. Challenge returns
// a token that is valid now, fetching one if the cached token has reached
// its refresh point; a token whose response had no expires_in is kept for
// Initial but replaced on every Challenge, since the challenge is then the
// only sign of its expiry.
//
// # Credentials
//
// The client ID and secret are given in Config or, as with Pulsar's
// "privateKey" parameter, in a JSON credentials file ([FromKeyFile],
// Config.KeyFile) with the fields client_id, client_secret and, optionally,
// issuer_url. The file is read when the Authenticator is made, to fail
// early, and again for every token request, so that a rotated secret is
// picked up.
//
// Errors never hold the client secret or an access token (any that an
// endpoint echoes back is replaced by "[redacted]"), and neither does the
// String or GoString of an Authenticator.
package oauth2

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pulsarconn/pulsarconn/adapters/auth/internal/redact"
	"github.com/pulsarconn/pulsarconn/ports"
)

// MethodName is the auth_method_name under which the access token is
// presented: Pulsar's OAuth2 client plugins use the token method.
const MethodName = "token"

// DefaultMaxRefreshMargin caps the default refresh margin, which is 10% of
// a token's lifetime.
const DefaultMaxRefreshMargin = 60 * time.Second

// Errors; match them with errors.Is.
var (
	// ErrConfig is returned by New and FromKeyFile for an unusable
	// Config.
	ErrConfig = errors.New("oauth2: invalid configuration")
	// ErrKeyFile is the cause of a failure to read or parse the
	// credentials file.
	ErrKeyFile = errors.New("oauth2: invalid key file")
	// ErrTokenFetch is the cause of every failure to obtain an access
	// token from the authorization server: discovery, the token request
	// itself, or an unusable response. A refusal by the token endpoint
	// also matches *TokenError with errors.As.
	ErrTokenFetch = errors.New("oauth2: cannot get an access token")
)

// Config says where and as whom to obtain access tokens. Give TokenURL or
// IssuerURL (or a key file with issuer_url), and either ClientID and
// ClientSecret or KeyFile.
type Config struct {
	// IssuerURL is the authorization server's issuer, for example
	// "https://auth.example.com/". The token endpoint is looked up in its
	// OpenID Connect discovery document, unless TokenURL is set.
	IssuerURL string
	// TokenURL is the token endpoint. It takes precedence over IssuerURL.
	TokenURL string
	// ClientID and ClientSecret identify the client. Leave them empty when
	// KeyFile is set.
	ClientID     string
	ClientSecret string
	// KeyFile is the path (or "file://" URL) of a JSON credentials file
	// with client_id, client_secret and optionally issuer_url, as Pulsar's
	// OAuth2 plugin reads (its "privateKey" parameter). Its issuer_url is
	// used when neither TokenURL nor IssuerURL is set.
	KeyFile string
	// Audience, when set, is sent as the "audience" parameter: the
	// identifier of the Pulsar cluster as a resource server.
	Audience string
	// Scopes, when set, are sent space-separated as the "scope" parameter.
	Scopes []string
}

// String describes the Config with ClientSecret redacted, so that logging
// a Config is safe.
func (c Config) String() string {
	secret := ""
	if c.ClientSecret != "" {
		secret = redact.Mark
	}
	return fmt.Sprintf("oauth2.Config{IssuerURL: %q, TokenURL: %q, ClientID: %q, ClientSecret: %q, KeyFile: %q, Audience: %q, Scopes: %q}",
		redactURL(c.IssuerURL), redactURL(c.TokenURL), c.ClientID, secret, c.KeyFile, c.Audience, c.Scopes)
}

// GoString is String, so that %#v cannot print the secret either.
func (c Config) GoString() string { return c.String() }

// Option changes how an Authenticator obtains and caches tokens.
type Option func(*options)

type options struct {
	now       func() time.Time
	client    *http.Client
	margin    time.Duration
	marginSet bool
}

// WithClock sets the clock that decides when a cached token is due for
// refresh; tests use it to move time without sleeping. Default: time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithHTTPClient sets the HTTP client for discovery and token requests
// (its transport carries any TLS settings the authorization server needs).
// Each call's context bounds the request. Default: http.DefaultClient.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) {
		if c != nil {
			o.client = c
		}
	}
}

// WithRefreshMargin sets how long before its expiry a cached token is
// replaced: d, but at most half the token's lifetime, so that every token
// is used for a while. Zero refreshes at expiry; a negative d restores the
// default: 10% of the lifetime, at most DefaultMaxRefreshMargin (60 s).
func WithRefreshMargin(d time.Duration) Option {
	return func(o *options) { o.margin, o.marginSet = d, d >= 0 }
}

var _ ports.Authenticator = (*Authenticator)(nil)

// Authenticator presents OAuth 2.0 access tokens obtained with the client
// credentials grant. It is safe for concurrent use; share one among the
// Brokers of a client so that they share its token. fmt prints it through
// String and GoString, which leave the secrets out.
type Authenticator struct {
	s *session
}

// session is the Authenticator's state, behind a pointer so that the
// Authenticator can be printed by value without copying its lock.
type session struct {
	cfg    Config // ClientSecret cleared: see secret
	secret redact.Secret
	opts   options

	mu        sync.Mutex
	cached    *cachedToken
	flight    *flight
	discovery map[string]string // issuer URL → token endpoint
}

// cachedToken is an access token and the times that govern its reuse.
type cachedToken struct {
	value     redact.Secret
	expiry    time.Time // zero: the response had no expires_in
	refreshAt time.Time // expiry less the margin
}

// flight is a token request in progress; callers that find one wait for
// its result instead of sending their own.
type flight struct {
	done chan struct{}
	tok  *cachedToken
	err  error
}

// New returns an Authenticator for cfg, or an error matching ErrConfig (or
// ErrKeyFile) if cfg cannot work. It sends no request: the first token is
// fetched by the first Initial.
func New(cfg Config, opts ...Option) (*Authenticator, error) {
	o := options{now: time.Now, client: http.DefaultClient}
	for _, opt := range opts {
		opt(&o)
	}
	s := &session{
		cfg:       cfg,
		secret:    redact.NewSecret(cfg.ClientSecret),
		opts:      o,
		discovery: map[string]string{},
	}
	s.cfg.ClientSecret = ""
	s.cfg.Scopes = append([]string(nil), cfg.Scopes...)
	if err := s.validate(); err != nil {
		return nil, err
	}
	return &Authenticator{s: s}, nil
}

// FromKeyFile returns an Authenticator whose client credentials and issuer
// come from the JSON credentials file at path (a path or a "file://" URL),
// as Pulsar's OAuth2 plugin takes them: issuerUrl from the file's
// issuer_url, audience as given, and scope a space-separated list (may be
// empty). The file must have issuer_url; use New with Config.KeyFile and
// Config.IssuerURL or TokenURL otherwise.
func FromKeyFile(path, audience, scope string, opts ...Option) (*Authenticator, error) {
	return New(Config{KeyFile: path, Audience: audience, Scopes: strings.Fields(scope)}, opts...)
}

func (s *session) validate() error {
	c := &s.cfg
	for _, u := range []struct{ name, value string }{{"TokenURL", c.TokenURL}, {"IssuerURL", c.IssuerURL}} {
		if u.value == "" {
			continue
		}
		if err := checkURL(u.value); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrConfig, u.name, err)
		}
	}
	if c.KeyFile != "" {
		if c.ClientID != "" || !s.secret.IsZero() {
			return fmt.Errorf("%w: set either KeyFile or ClientID and ClientSecret, not both", ErrConfig)
		}
		kf, err := readKeyFile(c.KeyFile)
		if err != nil {
			return err
		}
		if c.TokenURL == "" && c.IssuerURL == "" && kf.IssuerURL == "" {
			return fmt.Errorf("%w: no TokenURL or IssuerURL, and key file %s has no issuer_url", ErrConfig, c.KeyFile)
		}
		return nil
	}
	switch {
	case c.ClientID == "":
		return fmt.Errorf("%w: no ClientID (or KeyFile)", ErrConfig)
	case s.secret.IsZero():
		return fmt.Errorf("%w: no ClientSecret for client %q", ErrConfig, c.ClientID)
	case c.TokenURL == "" && c.IssuerURL == "":
		return fmt.Errorf("%w: no TokenURL or IssuerURL", ErrConfig)
	}
	return nil
}

// checkURL accepts an absolute http or https URL without credentials in
// it. The error leaves the URL out: it might hold a secret after all.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("not a URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("scheme %q, want https (or http)", u.Scheme)
	case u.Host == "":
		return errors.New("no host")
	case u.User != nil:
		return errors.New("credentials in the URL; use ClientID and ClientSecret")
	}
	return nil
}

// Name returns "token".
func (a *Authenticator) Name() string { return MethodName }

// Initial returns an access token for CONNECT: the cached one if it has not
// reached its refresh point, a newly fetched one otherwise.
func (a *Authenticator) Initial(ctx context.Context) ([]byte, error) {
	return a.s.token(ctx, false)
}

// Challenge returns an access token that is valid now, fetching a new one
// if the cached one has reached its refresh point or its lifetime is
// unknown. Whatever the challenge data: the one challenge a broker sends
// on the token method asks for fresh credentials ("PulsarAuthRefresh").
func (a *Authenticator) Challenge(ctx context.Context, _ []byte) ([]byte, error) {
	return a.s.token(ctx, true)
}

// token returns a token that is fresh enough, sharing one request among
// concurrent callers. Each caller waits no longer than its own ctx; if the
// caller whose ctx drove the shared request gives up, the others send their
// own.
func (s *session) token(ctx context.Context, challenge bool) ([]byte, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrTokenFetch, err)
		}
		s.mu.Lock()
		if t := s.cached; t != nil && t.fresh(s.opts.now(), challenge) {
			s.mu.Unlock()
			return []byte(t.value.Reveal()), nil
		}
		if f := s.flight; f != nil {
			s.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: waiting for the token request: %w", ErrTokenFetch, ctx.Err())
			}
			if f.err != nil && isContextError(f.err) {
				continue // that caller gave up; try ourselves
			}
			return f.result()
		}
		f := &flight{done: make(chan struct{})}
		s.flight = f
		s.mu.Unlock()

		f.tok, f.err = s.fetch(ctx)

		s.mu.Lock()
		if f.err == nil {
			s.cached = f.tok
		} else if old := s.cached; old != nil && !old.expiry.IsZero() && s.opts.now().Before(old.expiry) {
			// An early refresh failed, but the cached token is still
			// good: use it, and let the next call try again.
			f.tok, f.err = old, nil
		}
		s.flight = nil
		s.mu.Unlock()
		close(f.done)
		return f.result()
	}
}

func (f *flight) result() ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	return []byte(f.tok.value.Reveal()), nil
}

// fresh reports whether t may be presented at now. A token of unknown
// lifetime is good for CONNECT but not in answer to a challenge.
func (t *cachedToken) fresh(now time.Time, challenge bool) bool {
	if t.expiry.IsZero() {
		return !challenge
	}
	return now.Before(t.refreshAt)
}

// margin is how long before the end of a lifetime-long validity a token is
// refreshed.
func (o *options) marginFor(lifetime time.Duration) time.Duration {
	if o.marginSet {
		return min(o.margin, lifetime/2)
	}
	return min(lifetime/10, DefaultMaxRefreshMargin)
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// String describes the Authenticator without its secrets, for logs, for
// example `oauth2.Authenticator{client_id: "app", token_url:
// "https://auth.example.com/oauth/token", audience: "urn:pulsar:cluster"}`.
// It has a value receiver so that an Authenticator printed by value is
// described the same way.
func (a Authenticator) String() string {
	if a.s == nil {
		return "oauth2.Authenticator(nil)"
	}
	c := a.s.cfg
	var b strings.Builder
	b.WriteString("oauth2.Authenticator{")
	sep := ""
	field := func(name, value string) {
		if value != "" {
			fmt.Fprintf(&b, "%s%s: %q", sep, name, value)
			sep = ", "
		}
	}
	field("client_id", c.ClientID)
	field("key_file", c.KeyFile)
	field("token_url", redactURL(c.TokenURL))
	field("issuer_url", redactURL(c.IssuerURL))
	field("audience", c.Audience)
	field("scope", strings.Join(c.Scopes, " "))
	b.WriteString("}")
	return b.String()
}

// GoString is String, so that %#v cannot print a secret either.
func (a Authenticator) GoString() string { return a.String() }

// redactURL drops any query from u, where a careless configuration might
// have put a secret.
func redactURL(u string) string {
	if before, _, ok := strings.Cut(u, "?"); ok {
		return before + "?" + redact.Mark
	}
	return u
}
