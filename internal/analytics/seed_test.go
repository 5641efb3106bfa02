package analytics_test

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// seedOf is a property test's seed: from the environment variable env
// when set (to replay a failure), else the clock; logged either way.
func seedOf(t *testing.T, env string) uint64 {
	t.Helper()
	seed := time.Now().UnixNano()
	if s := os.Getenv(env); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", env, s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay: %s=%d)", seed, env, seed)
	return uint64(seed)
}
