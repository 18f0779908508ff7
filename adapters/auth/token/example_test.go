package token_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/pulsarconn/pulsarconn/adapters/auth/token"
)

func ExampleNew() {
	a := token.New("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhcHAifQ.sig")
	// Pass a to pulsarconn.Start with pulsarconn.WithAuthenticator(a).
	data, err := a.Initial(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("auth_method_name=%s auth_data=%s\n", a.Name(), data)
	// Logging the Authenticator is safe:
	fmt.Println(a)
	// Output:
	// auth_method_name=token auth_data=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhcHAifQ.sig
	// token.Authenticator{token: [redacted]}
}

func ExampleFromFile() {
	dir, err := os.MkdirTemp("", "pulsar-token")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "token")

	// As a secret mounted into a container: the file is read on every
	// handshake and every refresh challenge, so rotation needs no restart.
	a := token.FromFile(path)
	ctx := context.Background()
	if _, err := a.Initial(ctx); err != nil {
		fmt.Println("no file yet")
	}
	_ = os.WriteFile(path, []byte("first-token\n"), 0o600)
	data, _ := a.Initial(ctx)
	fmt.Printf("CONNECT: %s\n", data)
	_ = os.WriteFile(path, []byte("rotated-token\n"), 0o600)
	data, _ = a.Challenge(ctx, []byte("PulsarAuthRefresh"))
	fmt.Printf("AUTH_RESPONSE: %s\n", data)
	// Output:
	// no file yet
	// CONNECT: first-token
	// AUTH_RESPONSE: rotated-token
}

func ExampleFromFunc() {
	a := token.FromFunc(func(ctx context.Context) (string, error) {
		// Fetch from a secret store, honouring ctx.
		return "token-from-vault", nil
	})
	data, err := a.Initial(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", data)
	// Output:
	// token-from-vault
}
