package bot

// Refusals and unknown commands: a reply that says why and what to do,
// and, for a refusal, a log line that names the user, so an operator can
// add them to telegram.admins.

import (
	"context"
	"sort"

	"github.com/otpbot/otpbot/templates"
)

// refuse answers a command r's user may not run here, saying why
// (reason, one of templates.Refused*) and nothing about any card.
func (c *Commands) refuse(ctx context.Context, r *request, reason string) error {
	c.count(r.name, "refused")
	c.log.Info("command refused", "user", r.user, "command", r.name, "reason", reason, "target", r.target)
	return c.reply(ctx, r, "refused", templates.RefusedView{Command: r.name, Reason: reason, UserID: r.user})
}

// maxSuggestDistance is how many letters a command may be off by for the
// reply to an unknown command to suggest it.
const maxSuggestDistance = 2

// unknown answers a command otpbot does not have with the closest one it
// has, if any is close. The metric and the log name it "unknown": what a
// user types there is anything at all.
func (c *Commands) unknown(ctx context.Context, r *request) error {
	typed := r.name
	r.name = "unknown"
	c.count(r.name, "refused")
	c.log.Info("command refused", "user", r.user, "command", r.name, "reason", "unknown command", "target", r.target)
	return c.reply(ctx, r, "unknown", templates.UnknownView{Command: typed, Suggest: c.suggest(typed)})
}

// suggest returns the command closest to typed (by edit distance, at most
// maxSuggestDistance, and less than half its length), "" when none is.
func (c *Commands) suggest(typed string) string {
	names := make([]string, 0, len(c.commands))
	for n := range c.commands {
		names = append(names, n)
	}
	sort.Strings(names) // ties go the same way every time
	best, bestDist := "", maxSuggestDistance+1
	for _, n := range names {
		if d := editDistance(typed, n); d < bestDist && 2*d < len(n) {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
