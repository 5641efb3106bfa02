// Package topk keeps the first k items of a stream in an order: what a
// scan of a whole collection keeps for one page (a score ranking, an
// ad-hoc list), per worker and then merged, in O(k) memory.
package topk

import "slices"

// Pos is where x goes in top, sorted by before (a strict total order).
func Pos[T any](top []T, x T, before func(a, b T) bool) int {
	i, _ := slices.BinarySearchFunc(top, x, func(a, b T) int {
		if before(a, b) {
			return -1
		}
		return 1
	})
	return i
}

// Insert puts x in its place in top, keeping at most k items, and tells
// whether x was kept. mk makes the item to store from x only when it is
// kept (a copy of what would otherwise not outlive the scan's page).
func Insert[T any](top []T, x T, k int, before func(a, b T) bool, mk func(T) T) ([]T, bool) {
	i := Pos(top, x, before)
	if i >= k {
		return top, false
	}
	if mk != nil {
		x = mk(x)
	}
	top = slices.Insert(top, i, x)
	if len(top) > k {
		top = top[:k]
	}
	return top, true
}
