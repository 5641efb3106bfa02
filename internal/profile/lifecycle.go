package profile

import "slices"

// Lifecycle stages, in the order a person moves through them; CHURNED and
// OTHER stand outside that order.
const (
	Subscriber  = "SUBSCRIBER"
	Lead        = "LEAD"
	MQL         = "MQL"
	SQL         = "SQL"
	Opportunity = "OPPORTUNITY"
	Customer    = "CUSTOMER"
	Evangelist  = "EVANGELIST"
	Churned     = "CHURNED"
	OtherStage  = "OTHER"
)

// LifecycleStages lists them, the ordered ones first.
var LifecycleStages = []string{Subscriber, Lead, MQL, SQL, Opportunity, Customer, Evangelist, Churned, OtherStage}

// IsLifecycleStage tells whether s is a lifecycle stage.
func IsLifecycleStage(s string) bool { return slices.Contains(LifecycleStages, s) }

// lifecycleRank orders the stages automatic moves go forward through:
// none, CHURNED and OTHER rank 0 (anything ordered is forward from them:
// a churned customer who opens a deal is an opportunity again).
func lifecycleRank(s string) int {
	if i := slices.Index(LifecycleStages[:7], s); i >= 0 {
		return i + 1
	}
	return 0
}

// Forward tells whether moving from stage to next goes forward (the only
// moves made automatically).
func Forward(stage, next string) bool { return lifecycleRank(next) > lifecycleRank(stage) }

// Further is the stage further forward of a and b (a on a tie): what a
// merge keeps.
func Further(a, b string) string {
	if Forward(a, b) || a == "" {
		return b
	}
	return a
}
