package oauth2_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/pulsarconn/pulsarconn/adapters/auth/oauth2"
)

func ExampleNew() {
	// A stand-in for the authorization server.
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		fmt.Println("grant_type:", r.PostForm.Get("grant_type"), "audience:", r.PostForm.Get("audience"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token": "eyJhbGciOi.example.token", "token_type": "Bearer", "expires_in": 3600}`)
	}))
	defer idp.Close()

	a, err := oauth2.New(oauth2.Config{
		TokenURL:     idp.URL + "/oauth/token", // or IssuerURL, for discovery
		ClientID:     "my-app",
		ClientSecret: "my-secret",
		Audience:     "urn:pulsar:my-cluster",
	}, oauth2.WithHTTPClient(idp.Client()))
	if err != nil {
		log.Fatal(err)
	}
	// Pass a to pulsarconn.Start with pulsarconn.WithAuthenticator(a).
	// CONNECT carries the access token under the method "token":
	ctx := context.Background()
	data, err := a.Initial(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("auth_method_name=%s auth_data=%s\n", a.Name(), data)
	// The token is cached: the broker's refresh challenge is answered
	// without a request until 60 s before the token expires.
	data, _ = a.Challenge(ctx, []byte("PulsarAuthRefresh"))
	fmt.Printf("AUTH_RESPONSE: %s\n", data)
	// Output:
	// grant_type: client_credentials audience: urn:pulsar:my-cluster
	// auth_method_name=token auth_data=eyJhbGciOi.example.token
	// AUTH_RESPONSE: eyJhbGciOi.example.token
}
