package token_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/adapters/auth/internal/authtest"
	"github.com/pulsarconn/pulsarconn/adapters/auth/token"
	"github.com/pulsarconn/pulsarconn/ports"
)

// refresh is the auth_data of the AUTH_CHALLENGE with which a broker asks a
// live connection for fresh credentials.
var refresh = []byte("PulsarAuthRefresh")

const secret = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.s1gnature"

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// both calls Initial and Challenge and checks they agree.
func both(t *testing.T, a ports.Authenticator) (string, error) {
	t.Helper()
	ctx := authtest.Context(t)
	initial, err1 := a.Initial(ctx)
	challenged, err2 := a.Challenge(ctx, refresh)
	assert.Equal(t, string(initial), string(challenged), "Initial and Challenge present the same token")
	assert.Equal(t, err1 == nil, err2 == nil, "Initial and Challenge fail alike: %v, %v", err1, err2)
	return string(initial), err1
}

func TestName(t *testing.T) {
	for _, a := range []*token.Authenticator{
		token.New(secret),
		token.FromFile("/nonexistent"),
		token.FromFunc(func(context.Context) (string, error) { return secret, nil }),
	} {
		assert.Equal(t, "token", a.Name(), "%v", a)
	}
}

func TestNew(t *testing.T) {
	got, err := both(t, token.New(secret))
	require.NoError(t, err)
	assert.Equal(t, secret, got)

	_, err = both(t, token.New(""))
	assert.ErrorIs(t, err, token.ErrEmpty)
}

func TestInitialReturnsAFreshSlice(t *testing.T) {
	a := token.New(secret)
	ctx := authtest.Context(t)
	b, err := a.Initial(ctx)
	require.NoError(t, err)
	b[0] = 'X' // the driver owns what it gets
	again, err := a.Initial(ctx)
	require.NoError(t, err)
	assert.Equal(t, secret, string(again))
}

func TestFromFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		want    string
		wantErr error
	}{
		{name: "plain", content: secret, want: secret},
		{name: "trailing newline", content: secret + "\n", want: secret},
		{name: "surrounding white space", content: " \t" + secret + "\r\n\n", want: secret},
		{name: "empty", content: "", wantErr: token.ErrEmpty},
		{name: "white space only", content: " \n\t\n", wantErr: token.ErrEmpty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, dir, strings.ReplaceAll(tt.name, " ", "-"), tt.content)
			got, err := both(t, token.FromFile(path))
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Contains(t, err.Error(), path, "the error names the file")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestFromFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-token")
	_, err := both(t, token.FromFile(path))
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.Contains(t, err.Error(), path)
	assert.True(t, strings.HasPrefix(err.Error(), "token: "), "package prefix: %v", err)
}

// TestFromFileRereads: the file is read on every Initial and Challenge, so
// a token rotated on disk is presented at the next handshake or refresh,
// and a file that appears after FromFile is found.
func TestFromFileRereads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	a := token.FromFile(path)
	ctx := authtest.Context(t)

	_, err := a.Initial(ctx)
	require.ErrorIs(t, err, fs.ErrNotExist, "not there yet")

	writeFile(t, dir, "token", "first\n")
	got, err := a.Initial(ctx)
	require.NoError(t, err)
	assert.Equal(t, "first", string(got))

	writeFile(t, dir, "token", "second\n")
	got, err = a.Challenge(ctx, refresh)
	require.NoError(t, err)
	assert.Equal(t, "second", string(got), "the refresh presents the rotated token")

	require.NoError(t, os.Remove(path))
	_, err = a.Challenge(ctx, refresh)
	assert.ErrorIs(t, err, fs.ErrNotExist, "no stale token once the file is gone")
}

func TestFromFunc(t *testing.T) {
	errSource := errors.New("vault unreachable")
	var mu sync.Mutex
	answers := []struct {
		tok string
		err error
	}{{tok: "one"}, {tok: "two"}, {err: errSource}, {tok: ""}}
	calls := 0
	a := token.FromFunc(func(ctx context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		ans := answers[calls]
		calls++
		return ans.tok, ans.err
	})
	ctx := authtest.Context(t)

	got, err := a.Initial(ctx)
	require.NoError(t, err)
	assert.Equal(t, "one", string(got))
	got, err = a.Challenge(ctx, refresh)
	require.NoError(t, err)
	assert.Equal(t, "two", string(got), "asked again for the refresh")
	_, err = a.Challenge(ctx, refresh)
	assert.ErrorIs(t, err, errSource)
	_, err = a.Initial(ctx)
	assert.ErrorIs(t, err, token.ErrEmpty)
	assert.Equal(t, 4, calls)
}

func TestFromFuncPassesContext(t *testing.T) {
	type key struct{}
	a := token.FromFunc(func(ctx context.Context) (string, error) {
		v, _ := ctx.Value(key{}).(string)
		return v, nil
	})
	got, err := a.Initial(context.WithValue(authtest.Context(t), key{}, "from-ctx"))
	require.NoError(t, err)
	assert.Equal(t, "from-ctx", string(got))
}

func TestFromFuncNilPanics(t *testing.T) {
	assert.Panics(t, func() { token.FromFunc(nil) })
}

func TestCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	for _, a := range []*token.Authenticator{
		token.New(secret),
		token.FromFile(writeFile(t, t.TempDir(), "token", secret)),
		token.FromFunc(func(context.Context) (string, error) { called = true; return secret, nil }),
	} {
		_, err := a.Initial(ctx)
		assert.ErrorIs(t, err, context.Canceled, "%v", a)
		_, err = a.Challenge(ctx, refresh)
		assert.ErrorIs(t, err, context.Canceled, "%v", a)
	}
	assert.False(t, called, "no token is fetched for a call that has ended")
}

// TestNoSecretPrinted: neither the Authenticator (by pointer or by value,
// with any verb) nor any error holds the token.
func TestNoSecretPrinted(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "token", secret+"\n")
	for _, a := range []*token.Authenticator{
		token.New(secret),
		token.FromFile(good),
		token.FromFunc(func(context.Context) (string, error) { return secret, nil }),
	} {
		authtest.NoSecretPrinted(t, secret, a)
	}
	assert.Equal(t, `token.Authenticator{file: "`+good+`"}`, token.FromFile(good).String())
	assert.Equal(t, "token.Authenticator{token: [redacted]}", token.New(secret).String())

	// Errors of every kind. A directory named like the secret stands in
	// for a path the system cannot read as a file.
	notAFile := filepath.Join(dir, "dir")
	require.NoError(t, os.Mkdir(notAFile, 0o700))
	empty := writeFile(t, dir, "empty", "\n")
	var errs []error
	for _, a := range []*token.Authenticator{
		token.FromFile(notAFile),
		token.FromFile(empty),
		token.FromFile(filepath.Join(dir, "missing")),
		token.FromFunc(func(context.Context) (string, error) { return "", nil }),
	} {
		_, err := a.Initial(authtest.Context(t))
		require.Error(t, err)
		errs = append(errs, err)
	}
	authtest.NoSecretInErrors(t, secret, errs...)
}

// TestConcurrentUse runs the Authenticators from many goroutines; -race
// reports any unsynchronised state.
func TestConcurrentUse(t *testing.T) {
	path := writeFile(t, t.TempDir(), "token", secret)
	for _, a := range []*token.Authenticator{
		token.New(secret),
		token.FromFile(path),
		token.FromFunc(func(context.Context) (string, error) { return secret, nil }),
	} {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				ctx := context.Background()
				got, err := a.Initial(ctx)
				assert.NoError(t, err)
				assert.Equal(t, secret, string(got))
				got, err = a.Challenge(ctx, refresh)
				assert.NoError(t, err)
				assert.Equal(t, secret, string(got))
			})
		}
		wg.Wait()
	}
}
