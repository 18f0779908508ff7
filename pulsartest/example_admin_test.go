package pulsartest_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// The admin REST API and HTTP lookup of a fake broker, served on a
// loopback listener: a partitioned topic created as a test suite creates
// it, then read back, and looked up as a client with an http:// service
// URL does.
func ExampleServer_StartAdmin() {
	s := pulsartest.NewServer()
	defer s.Close()
	for _, start := range []func(net.Listener) error{s.Start, s.StartAdmin} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		if err := start(l); err != nil {
			panic(err)
		}
	}
	call := func(method, path, body string) (int, string) {
		req, err := http.NewRequest(method, s.AdminURL()+path, strings.NewReader(body))
		if err != nil {
			panic(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, _ := call("PUT", "/admin/v2/persistent/public/default/orders/partitions", "3")
	fmt.Println(code)
	fmt.Println(call("PUT", "/admin/v2/persistent/public/default/orders/partitions", "3"))
	fmt.Println(call("GET", "/admin/v2/persistent/public/default/orders/partitions", ""))
	code, lookup := call("GET", "/lookup/v2/topic/persistent/public/default/orders-partition-0", "")
	fmt.Println(code, strings.Contains(lookup, `"brokerUrl":"`+s.URL()+`"`))
	// Output:
	// 204
	// 409 {"reason":"This topic already exists"}
	// 200 {"partitions":3,"deleted":false}
	// 200 true
}
