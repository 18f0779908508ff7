package pulsarconn_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/internal/bench"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// TestPartitionedTopicMetadataAnswers: concurrent calls, whose answers
// come together and whose frames go back for reuse once the count is
// taken, each get their own answer: a count, the broker's failure, or a
// protocol error for an answer of another type.
func TestPartitionedTopicMetadataAnswers(t *testing.T) {
	synctest.Test(t, testPartitionedTopicMetadataAnswers)
}

func testPartitionedTopicMetadataAnswers(t *testing.T) {
	e := memoryEnv(t)
	b := e.connected(t)
	ctx := testContext(t)
	e.srv.InterceptEvery(pulsarpb.BaseCommand_PARTITIONED_METADATA, func(call *pulsartest.Call) pulsartest.Action {
		kind, n, _ := strings.Cut(call.Command().GetPartitionMetadata().GetTopic(), "-")
		rid, _ := call.RequestID()
		switch kind {
		case "fail":
			call.ReplyError(pulsarpb.ServerError_TopicNotFound, "no topic "+n)
		case "odd":
			call.Reply(&pulsarpb.BaseCommand{
				Type:    pulsarpb.BaseCommand_SUCCESS.Enum(),
				Success: &pulsarpb.CommandSuccess{RequestId: proto.Uint64(rid)},
			})
		default:
			p, _ := strconv.Atoi(n)
			call.Reply(&pulsarpb.BaseCommand{
				Type: pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE.Enum(),
				PartitionMetadataResponse: &pulsarpb.CommandPartitionedTopicMetadataResponse{
					RequestId: proto.Uint64(rid), Partitions: proto.Uint32(uint32(p)),
				},
			})
		}
		return pulsartest.Handled
	})
	for round := range 20 {
		var wg sync.WaitGroup
		for i := range 30 {
			topic := fmt.Sprintf("%s-%d", []string{"ok", "fail", "odd"}[i%3], round*100+i)
			wg.Go(func() {
				n, err := b.PartitionedTopicMetadata(ctx, topic)
				want, _ := strconv.Atoi(topic[strings.IndexByte(topic, '-')+1:])
				switch topic[:2] {
				case "ok":
					assert.NoError(t, err, topic)
					assert.Equal(t, want, n, topic)
				case "fa":
					var se *pulsarconn.ServerError
					if assert.ErrorAs(t, err, &se, topic) {
						assert.Equal(t, pulsarpb.ServerError_TopicNotFound, se.Code, topic)
						assert.Equal(t, "no topic "+strconv.Itoa(want), se.Message, topic)
					}
				default:
					assert.ErrorIs(t, err, pulsarconn.ErrProtocol, topic)
					assert.Contains(t, fmt.Sprint(err), "SUCCESS", topic)
				}
			})
		}
		wg.Wait()
	}
}

// TestPartitionedTopicMetadataAllocatesNothing: a round trip through
// PartitionedTopicMetadata makes no heap allocation, against the lean
// benchmark server (which makes none either) on loopback. Under -race,
// sync.Pool drops a quarter of what is put back, so up to one allocation
// per call is let through there; before its pools the call made two.
func TestPartitionedTopicMetadataAllocatesNothing(t *testing.T) {
	_, b := benchBroker(t, bench.ServerConfig{Partitions: 4})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	allocs := testing.AllocsPerRun(200, func() {
		n, err := b.PartitionedTopicMetadata(ctx, bench.Topic)
		if err != nil || n != 4 {
			t.Errorf("PartitionedTopicMetadata = %d, %v; want 4", n, err)
		}
	})
	limit := 0.0
	if raceEnabled {
		limit = 1
	}
	assert.LessOrEqual(t, allocs, limit)
}
