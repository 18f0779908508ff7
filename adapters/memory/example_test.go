package memory_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/pulsarconn/pulsarconn/adapters/memory"
)

func ExampleNetwork() {
	n := memory.NewNetwork()
	l, err := n.Listen("broker:6650")
	if err != nil {
		panic(err)
	}
	defer l.Close()

	// An echo server.
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()

	// *Network is a ports.Transport: hand it to the client under test.
	c, err := n.Dial(context.Background(), "broker:6650")
	if err != nil {
		panic(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("PING"))
	buf := make([]byte, 4)
	_, _ = io.ReadFull(c, buf)
	fmt.Printf("echo: %s, open connections: %d\n", buf, n.Conns())

	// Inject faults: the broker drops every connection and refuses new ones.
	n.DropAll()
	_, err = c.Read(buf)
	fmt.Println(err)
	n.RefuseDials(true)
	_, err = n.Dial(context.Background(), "broker:6650")
	fmt.Println(err)
	// Output:
	// echo: PING, open connections: 1
	// read memory client:1->broker:6650: memory: connection reset
	// dial memory broker:6650: memory: connection refused
}

func ExampleClock() {
	start := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := memory.NewClock(start)

	clock.AfterFunc(30*time.Second, func() {
		fmt.Println("keepalive PING at", clock.Now().Sub(start))
	})
	t := clock.AfterFunc(10*time.Second, func() {
		fmt.Println("request timeout") // never runs: stopped below
	})
	clock.AfterFunc(5*time.Second, func() {
		fmt.Println("reconnect at", clock.Now().Sub(start))
	})

	fmt.Println("stopped:", t.Stop())
	fmt.Println("pending:", clock.Pending())
	clock.Advance(time.Minute) // runs due callbacks here, in deadline order
	fmt.Println("pending:", clock.Pending())
	// Output:
	// stopped: true
	// pending: 2
	// reconnect at 5s
	// keepalive PING at 30s
	// pending: 0
}
