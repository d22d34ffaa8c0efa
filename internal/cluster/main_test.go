package cluster

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test closes its stores: none of their goroutines (heartbeat,
// command stream, background writes, the client's pools) may outlive them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
