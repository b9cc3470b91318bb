// Package testseed gives the seeded tests of every package their seed, one
// way: $CAIRN_TEST_SEED when set, else the test's default, and a failing
// test says how to run it again with the same seed.
//
//	r := rand.New(rand.NewPCG(testseed.Seed(t, 0), 1))
package testseed

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

// Env names the variable that overrides every seeded test's seed.
const Env = "CAIRN_TEST_SEED"

// Seed returns $CAIRN_TEST_SEED, else def, else (def 0) a fresh random
// seed. It logs the seed and, when t fails, the command that repeats it.
func Seed(t testing.TB, def uint64) uint64 {
	t.Helper()
	seed := def
	if seed == 0 {
		seed = rand.Uint64()
	}
	if v := os.Getenv(Env); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", Env, v, err)
		}
	}
	t.Logf("seed %d", seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("reproduce with %s=%d go test -run '^%s$'", Env, seed, t.Name())
		}
	})
	return seed
}
