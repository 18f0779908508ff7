package oauth2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	xoauth2 "golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/pulsarconn/pulsarconn/adapters/auth/internal/redact"
)

// discoveryPath is where an OpenID Connect issuer publishes its metadata,
// including its token_endpoint (OpenID Connect Discovery 1.0, section 4).
const discoveryPath = "/.well-known/openid-configuration"

// maxResponse bounds what is read of a discovery document.
const maxResponse = 1 << 20

// TokenError is a token endpoint's refusal: an HTTP error status or an
// RFC 6749 error response. Errors matching ErrTokenFetch wrap it; get it
// with errors.As. Code and Description are as the server sent them, with
// any credential it echoed replaced by "[redacted]".
type TokenError struct {
	// StatusCode is the HTTP status of the response.
	StatusCode int
	// Code is RFC 6749's "error", for example "invalid_client"; empty if
	// the response had none.
	Code string
	// Description is RFC 6749's "error_description", if any.
	Description string
}

// Error describes the refusal, for example `token endpoint answered 401:
// invalid_client: "client authentication failed"`.
func (e *TokenError) Error() string {
	s := "token endpoint answered " + strconv.Itoa(e.StatusCode)
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Description != "" {
		s += ": " + strconv.Quote(e.Description)
	}
	return s
}

// fetchError is ErrTokenFetch (or ErrKeyFile) with the reason, its text
// scrubbed of credentials. It unwraps to the sentinel and to whatever of
// the cause is safe to hand on: a *TokenError, a context error, or the
// cause itself when its text held no credential.
type fetchError struct {
	msg    string
	causes []error
}

func (e *fetchError) Error() string   { return e.msg }
func (e *fetchError) Unwrap() []error { return e.causes }

// credentials are what one token request is made with.
type credentials struct {
	clientID  string
	secret    redact.Secret
	issuerURL string
}

// fetch obtains a new token from the authorization server.
func (s *session) fetch(ctx context.Context) (*cachedToken, error) {
	creds, err := s.credentials()
	if err != nil {
		return nil, err
	}
	secrets := []string{creds.secret.Reveal()}
	s.mu.Lock()
	if s.cached != nil {
		secrets = append(secrets, s.cached.value.Reveal())
	}
	s.mu.Unlock()

	ctx = context.WithValue(ctx, xoauth2.HTTPClient, s.opts.client)
	tokenURL := s.cfg.TokenURL
	if tokenURL == "" {
		tokenURL, err = s.discover(ctx, creds.issuerURL)
		if err != nil {
			return nil, failed("discovering the token endpoint", err, secrets)
		}
	}

	cc := clientcredentials.Config{
		ClientID:     creds.clientID,
		ClientSecret: creds.secret.Reveal(),
		TokenURL:     tokenURL,
		Scopes:       s.cfg.Scopes,
		// Pulsar's clients send the client credentials in the form body;
		// auto-detection would send a second request after every
		// refusal.
		AuthStyle: xoauth2.AuthStyleInParams,
	}
	if s.cfg.Audience != "" {
		cc.EndpointParams = map[string][]string{"audience": {s.cfg.Audience}}
	}
	sent := s.opts.now()
	tok, err := cc.Token(ctx)
	if err != nil {
		return nil, failed("requesting a token from "+redactURL(tokenURL), err, secrets)
	}
	t := &cachedToken{value: redact.NewSecret(tok.AccessToken)}
	if lifetime, ok := lifetimeOf(tok); ok {
		if lifetime <= 0 {
			return nil, failed("requesting a token from "+redactURL(tokenURL),
				fmt.Errorf("expires_in %v is not positive", lifetime), secrets)
		}
		// Counted from before the request was sent: the server's
		// clock started no earlier.
		t.expiry = sent.Add(lifetime)
		t.refreshAt = t.expiry.Add(-s.opts.marginFor(lifetime))
	}
	return t, nil
}

// credentials returns the client credentials of the next request, reading
// the key file if there is one.
func (s *session) credentials() (credentials, error) {
	if s.cfg.KeyFile == "" {
		return credentials{clientID: s.cfg.ClientID, secret: s.secret, issuerURL: s.cfg.IssuerURL}, nil
	}
	kf, err := readKeyFile(s.cfg.KeyFile)
	if err != nil {
		return credentials{}, err
	}
	issuer := s.cfg.IssuerURL
	if issuer == "" {
		issuer = kf.IssuerURL
	}
	return credentials{clientID: kf.ClientID, secret: redact.NewSecret(kf.ClientSecret), issuerURL: issuer}, nil
}

// keyFile is Pulsar's JSON credentials file. Other fields ("type",
// "client_email") are ignored.
type keyFile struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	IssuerURL    string `json:"issuer_url"`
}

// readKeyFile reads and checks the credentials file. Its errors name the
// file and the problem, never its content: a JSON syntax error's text is
// left out, as it may quote the secret.
func readKeyFile(location string) (keyFile, error) {
	path := location
	if p, ok := strings.CutPrefix(location, "file://"); ok {
		path = p
	} else if p, ok := strings.CutPrefix(location, "file:"); ok {
		path = p
	}
	b, err := os.ReadFile(path)
	if err != nil {
		// An *fs.PathError names the file and the system's reason.
		return keyFile{}, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return keyFile{}, fmt.Errorf("%w: %s: not valid JSON (at byte %d)", ErrKeyFile, path, syntax.Offset)
		}
		return keyFile{}, fmt.Errorf("%w: %s: not a JSON object with string fields", ErrKeyFile, path)
	}
	switch {
	case kf.ClientID == "":
		return keyFile{}, fmt.Errorf("%w: %s: no client_id", ErrKeyFile, path)
	case kf.ClientSecret == "":
		return keyFile{}, fmt.Errorf("%w: %s: no client_secret", ErrKeyFile, path)
	}
	if kf.IssuerURL != "" {
		if err := checkURL(kf.IssuerURL); err != nil {
			return keyFile{}, fmt.Errorf("%w: %s: issuer_url: %w", ErrKeyFile, path, err)
		}
	}
	return kf, nil
}

// discover returns the token endpoint of issuer, from its discovery
// document, fetched once per issuer.
func (s *session) discover(ctx context.Context, issuer string) (string, error) {
	s.mu.Lock()
	endpoint, ok := s.discovery[issuer]
	s.mu.Unlock()
	if ok {
		return endpoint, nil
	}
	docURL := strings.TrimSuffix(issuer, "/") + discoveryPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, docURL, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.opts.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", docURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: status %s", docURL, resp.Status)
	}
	var doc struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("GET %s: not a discovery document", docURL)
	}
	if doc.TokenEndpoint == "" {
		return "", fmt.Errorf("GET %s: no token_endpoint", docURL)
	}
	if err := checkURL(doc.TokenEndpoint); err != nil {
		return "", fmt.Errorf("GET %s: token_endpoint: %w", docURL, err)
	}
	s.mu.Lock()
	s.discovery[issuer] = doc.TokenEndpoint
	s.mu.Unlock()
	return doc.TokenEndpoint, nil
}

// lifetimeOf returns the token's expires_in, which clientcredentials
// leaves in the raw response: the Expiry it computes is on the wall clock,
// and the Authenticator keeps time with its own clock.
func lifetimeOf(tok *xoauth2.Token) (time.Duration, bool) {
	var seconds float64
	switch v := tok.Extra("expires_in").(type) {
	case float64:
		seconds = v
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			return 0, false
		}
		seconds = f
	case string: // some servers send a string, or a form-encoded body
		if v == "" {
			return 0, false
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, false
		}
		seconds = f
	default:
		if tok.Expiry.IsZero() {
			return 0, false
		}
		return time.Until(tok.Expiry), true
	}
	return time.Duration(seconds * float64(time.Second)), true
}

// failed wraps err, the failure of step, as an ErrTokenFetch whose text
// holds none of secrets.
func failed(step string, err error, secrets []string) error {
	causes := []error{ErrTokenFetch}
	var detail string
	var re *xoauth2.RetrieveError
	switch {
	case errors.As(err, &re):
		// Its own text may quote the whole response body.
		te := &TokenError{
			Code:        redact.String(re.ErrorCode, secrets...),
			Description: redact.String(re.ErrorDescription, secrets...),
		}
		if re.Response != nil {
			te.StatusCode = re.Response.StatusCode
		}
		causes = append(causes, te)
		detail = te.Error()
	default:
		detail = redact.String(err.Error(), secrets...)
		switch {
		case errors.Is(err, context.Canceled):
			causes = append(causes, context.Canceled)
		case errors.Is(err, context.DeadlineExceeded):
			causes = append(causes, context.DeadlineExceeded)
		case !redact.Contains(err.Error(), secrets...):
			causes = append(causes, err)
		}
	}
	return &fetchError{msg: ErrTokenFetch.Error() + ": " + step + ": " + detail, causes: causes}
}
