package basic_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/adapters/auth/basic"
	"github.com/pulsarconn/pulsarconn/adapters/auth/internal/authtest"
)

const password = "c0rrect-h0rse-battery"

// refresh is the auth_data of the AUTH_CHALLENGE with which a broker asks a
// live connection for fresh credentials.
var refresh = []byte("PulsarAuthRefresh")

func TestCredentials(t *testing.T) {
	a, err := basic.New("alice", password)
	require.NoError(t, err)
	assert.Equal(t, "basic", a.Name())
	assert.Equal(t, "alice", a.User())
	ctx := authtest.Context(t)

	got, err := a.Initial(ctx)
	require.NoError(t, err)
	assert.Equal(t, "alice:"+password, string(got), "plain user:password, as on the binary protocol")

	got[0] = 'X' // the caller owns the slice
	for _, challenge := range [][]byte{refresh, []byte("anything"), nil} {
		got, err = a.Challenge(ctx, challenge)
		require.NoError(t, err)
		assert.Equal(t, "alice:"+password, string(got), "challenge %q", challenge)
	}
}

// TestNewValidates: the broker splits the auth data at ':' and wants
// exactly two non-empty parts, so New refuses what could never log in.
func TestNewValidates(t *testing.T) {
	tests := []struct {
		name, user, password string
		wantMsg              string
	}{
		{"empty user", "", password, "empty user"},
		{"colon in user", "ali:ce", password, `user "ali:ce" contains ':'`},
		{"empty password", "alice", "", `empty password for user "alice"`},
		{"colon in password", "alice", "pass:" + password, `password of user "alice" contains ':'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := basic.New(tt.user, tt.password)
			assert.Nil(t, a)
			require.ErrorIs(t, err, basic.ErrInvalidCredentials)
			assert.Contains(t, err.Error(), tt.wantMsg)
			authtest.NoSecretInErrors(t, password, err)
		})
	}
}

func TestAllowedCharacters(t *testing.T) {
	// Anything but ':' goes, white space and non-ASCII included.
	a, err := basic.New("ünïcode user", "p@ss w0rd=/+")
	require.NoError(t, err)
	got, err := a.Initial(authtest.Context(t))
	require.NoError(t, err)
	assert.Equal(t, "ünïcode user:p@ss w0rd=/+", string(got))
}

func TestCanceledContext(t *testing.T) {
	a, err := basic.New("alice", password)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = a.Initial(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	_, err = a.Challenge(ctx, refresh)
	assert.ErrorIs(t, err, context.Canceled)
}

// TestNoSecretPrinted: the Authenticator, by pointer or by value and with
// any verb, never shows the password.
func TestNoSecretPrinted(t *testing.T) {
	a, err := basic.New("alice", password)
	require.NoError(t, err)
	authtest.NoSecretPrinted(t, password, a)
	assert.Equal(t, `basic.Authenticator{user: "alice", password: [redacted]}`, a.String())
}

func TestConcurrentUse(t *testing.T) {
	a, err := basic.New("alice", password)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got, err := a.Initial(context.Background())
			assert.NoError(t, err)
			assert.Equal(t, "alice:"+password, string(got))
			got, err = a.Challenge(context.Background(), refresh)
			assert.NoError(t, err)
			assert.Equal(t, "alice:"+password, string(got))
		})
	}
	wg.Wait()
}
