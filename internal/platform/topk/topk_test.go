package topk

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestInsertKeepsTheFirstK: streamed in any order, in pieces merged
// afterwards, Insert keeps exactly the first k of a sort.
func TestInsertKeepsTheFirstK(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	less := func(a, b int) bool { return a < b }
	for round := 0; round < 200; round++ {
		n, k := r.IntN(300), 1+r.IntN(30)
		all := r.Perm(n)
		var merged []int
		for part := range slices.Chunk(all, 1+r.IntN(50)) {
			var mine []int
			for _, x := range part {
				mine, _ = Insert(mine, x, k, less, nil)
			}
			for _, x := range mine {
				merged, _ = Insert(merged, x, k, less, func(x int) int { return x })
			}
		}
		want := slices.Sorted(slices.Values(all))
		want = want[:min(k, len(want))]
		if !slices.Equal(merged, want) {
			t.Fatalf("n %d k %d: %v, want %v", n, k, merged, want)
		}
	}
}
