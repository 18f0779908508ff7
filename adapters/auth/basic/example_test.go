package basic_test

import (
	"context"
	"fmt"
	"log"

	"github.com/pulsarconn/pulsarconn/adapters/auth/basic"
)

func ExampleNew() {
	a, err := basic.New("alice", "s3cret")
	if err != nil {
		log.Fatal(err)
	}
	// Pass a to pulsarconn.Start with pulsarconn.WithAuthenticator(a). Its
	// CONNECT carries:
	data, err := a.Initial(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("auth_method_name=%s auth_data=%s\n", a.Name(), data)
	// Logging the Authenticator is safe:
	fmt.Println(a)

	_, err = basic.New("bob:admin", "pw")
	fmt.Println(err)
	// Output:
	// auth_method_name=basic auth_data=alice:s3cret
	// basic.Authenticator{user: "alice", password: [redacted]}
	// basic: invalid credentials: user "bob:admin" contains ':'
}
