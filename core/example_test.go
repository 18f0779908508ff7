package core_test

import (
	"fmt"
	"time"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/proto/command"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// printWaiter is a request's caller: it prints the answer.
type printWaiter struct{}

func (printWaiter) Done(resp *pulsarpb.BaseCommand, err error) {
	fmt.Println("  answer:", resp.GetType(), resp.GetPartitionMetadataResponse().GetPartitions(), err)
}

// printWritten prints the frames of a step's Output, as the broker would
// read them.
func printWritten(out []byte) {
	for len(out) > 0 {
		size, _ := frame.TotalSize(out)
		f, err := frame.Parse(out[4 : 4+size])
		if err != nil {
			panic(err)
		}
		fmt.Printf("  write %d bytes: %v", 4+size, f.Command.GetType())
		if id, ok := frame.RequestID(f.Command); ok {
			fmt.Printf(" request id %d", id)
		}
		fmt.Println()
		out = out[4+size:]
	}
}

// The driver's job, done by hand: every input carries the time, and each
// step's Ready says what to do — dial, write these bytes, complete that
// request, wake up at the deadline. Here a handshake and one request, with
// the broker's frames typed in.
func Example() {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	c := core.New(core.Config{Address: "broker:6650", ClientVersion: "example"})

	// step prints a step's effects and marks them carried out.
	step := func(name string) {
		r := c.Ready()
		fmt.Printf("%s:\n", name)
		for _, d := range r.Dials {
			fmt.Printf("  dial %s (generation %d), connect deadline in %v\n", d.Address, d.Gen, d.Deadline.Sub(now))
		}
		printWritten(r.Output)
		for _, s := range r.States {
			fmt.Printf("  state %v -> %v\n", s.From, s.To)
		}
		for _, comp := range r.Completions {
			comp.Waiter.Done(comp.Result, comp.Err)
		}
		if !r.Deadline.IsZero() {
			fmt.Printf("  next Tick in %v\n", r.Deadline.Sub(now))
		}
		c.Advance()
	}

	c.Start(now)
	step("Start")

	// The dial succeeded: the Conn writes CONNECT.
	gen := c.Gen()
	c.ConnUp(now, gen)
	step("ConnUp")

	// The broker's CONNECTED arrives 5 ms later.
	now = now.Add(5 * time.Millisecond)
	c.HandleFrame(now, gen, &frame.Frame{Command: &pulsarpb.BaseCommand{
		Type:      pulsarpb.BaseCommand_CONNECTED.Enum(),
		Connected: &pulsarpb.CommandConnected{ServerVersion: new("broker"), ProtocolVersion: new(frame.ProtocolVersion)},
	}})
	step("CONNECTED")

	// A request gets the next request id; its answer completes the Waiter.
	id, err := c.Request(now, command.PartitionedMetadata("persistent://public/default/orders"), printWaiter{})
	if err != nil {
		panic(err)
	}
	step("Request")
	c.HandleFrame(now, gen, &frame.Frame{Command: &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE.Enum(),
		PartitionMetadataResponse: &pulsarpb.CommandPartitionedTopicMetadataResponse{
			RequestId: &id, Partitions: new(uint32(3)),
		},
	}})
	step("PARTITIONED_METADATA_RESPONSE")
	// Output:
	// Start:
	//   dial broker:6650 (generation 1), connect deadline in 10s
	//   state disconnected -> connecting
	//   next Tick in 10s
	// ConnUp:
	//   write 31 bytes: CONNECT
	//   state connecting -> handshaking
	//   next Tick in 10s
	// CONNECTED:
	//   state handshaking -> connected
	//   next Tick in 30s
	// Request:
	//   write 51 bytes: PARTITIONED_METADATA request id 1
	//   next Tick in 30s
	// PARTITIONED_METADATA_RESPONSE:
	//   answer: PARTITIONED_METADATA_RESPONSE 3 <nil>
	//   next Tick in 30s
}
