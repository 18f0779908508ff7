package refclient_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// producer, consumer, Client and fake broker is closed by its test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
