package rule

import "github.com/halo-cdp/halo/internal/platform/apperr"

// CheckEventNodes refuses a rule with more than max event and lastEvent
// nodes (BAD_USER_INPUT): each is a feature counter kept on every profile
// unless another node or segment counts the same one already. Nodes
// repeating a feature count too: the cap is on the rule's size. The error
// names the first node over the cap in the validator's order (depth
// first, children in order), under RootPath. max < 1 checks nothing. It
// is apart from Validate: this cap is the deployment's (segment.Limits),
// Validate's limits (MaxNodes, MaxDepth, ...) are the rule language's.
func CheckEventNodes(r Rule, max int) error {
	if max < 1 {
		return nil
	}
	n := 0
	var err error
	walk(&r, RootPath, func(x *Rule, path string) bool {
		if err != nil {
			return false
		}
		kind := ""
		switch {
		case x.Event != nil:
			kind = ".event"
		case x.LastEvent != nil:
			kind = ".lastEvent"
		default:
			return true
		}
		if n++; n > max {
			err = apperr.Invalid(path+kind, "a rule has at most %d event and lastEvent nodes", max)
		}
		return true
	})
	return err
}
