package redis

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/otpbot/otpbot"
)

// candidate is a task a shard offers a claim: claimable now, with its
// priority and score (when it became claimable, µs).
type candidate struct {
	shard, prio int
	id          string
	score       float64
}

// claimSharded is Claim on a sharded prefix: every shard offers its up to
// max most urgent claimable tasks (one script each, in one pipeline), the
// max most urgent of all, by priority and then by when they became
// claimable, are chosen, and each shard leases its chosen ones (again one
// pipeline). A task another claimer took in between is skipped, so the
// claim may come back short.
func (s *Store) claimSharded(ctx context.Context, n int, now time.Time, lease time.Duration, max int) ([]otpbot.Job, error) {
	calls := make([]scriptCall, n)
	for i := range n {
		k := s.shard(i)
		args := peekArgs{B: k.base, Nprio: len(priorities), Now: us(now), Max: max}
		calls[i] = scriptCall{[]string{k.queue(otpbot.PriorityCode)}, args.argv()}
	}
	cmds, err := s.evalAll(ctx, "claim", peekScript, calls)
	if err != nil {
		return nil, err
	}
	var cands []candidate
	for i, c := range cmds {
		v, _ := c.Slice()
		for _, row := range v {
			r, _ := row.([]any)
			if len(r) != 3 {
				return nil, fmt.Errorf("redis claim: unexpected reply %v", row)
			}
			p, _ := r[0].(int64)
			score, err := strconv.ParseFloat(str(r[2]), 64)
			if err != nil {
				return nil, fmt.Errorf("redis claim: score %q: %w", str(r[2]), err)
			}
			cands = append(cands, candidate{shard: i, prio: int(p), id: str(r[1]), score: score})
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.prio, b.prio), cmp.Compare(a.score, b.score), cmp.Compare(a.id, b.id))
	})
	cands = cands[:min(len(cands), max)]
	rank := make(map[string]int, len(cands))
	picked := map[int][]pickRec{}
	var order []int
	for r, c := range cands {
		rank[c.id] = r
		if _, ok := picked[c.shard]; !ok {
			order = append(order, c.shard)
		}
		picked[c.shard] = append(picked[c.shard], pickRec{Prio: strconv.Itoa(c.prio), ID: c.id})
	}
	until := now.Add(lease)
	calls = calls[:0]
	for _, i := range order {
		k := s.shard(i)
		args := claimIDsArgs{B: k.base, Now: us(now), UntilScore: usCeil(until), UntilAt: fmtTime(until), Tok: token(),
			Picks: picked[i]}
		calls = append(calls, scriptCall{[]string{k.queue(otpbot.PriorityCode)}, args.argv()})
	}
	cmds, err = s.evalAll(ctx, "claim", claimIDsScript, calls)
	if err != nil {
		return nil, err
	}
	var jobs []otpbot.Job
	for _, c := range cmds {
		v, _ := c.Slice()
		js, err := s.decodeJobs(ctx, n, v, now, until)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, js...)
	}
	slices.SortFunc(jobs, func(a, b otpbot.Job) int { return cmp.Compare(rank[a.Task.ID], rank[b.Task.ID]) })
	return jobs, nil
}
