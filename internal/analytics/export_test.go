package analytics

// SubtractErased is EraseEvents cut by a crash after its subtraction,
// before the items are deleted (the lease aside).
var SubtractErased = subtractErased
