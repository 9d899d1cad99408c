package redis

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
)

// Ingest records ev in one script: the dedupe mark, a redacted history
// entry under each of ev.HistoryKeys() and, for a pushed kind not yet
// expired, a message and a send task (or the updated event and an update
// task when the group's message exists) for every target of an unbroken
// link of any of ev.Keys(), each target once. It returns after Redis answered and, when
// the server has the append-only file on and knows WAITAOF (Redis 7.2+),
// after the push was fsynced to it, and once min_replicas_ack replicas
// have it, so the push may then be acknowledged. On a sharded prefix the
// script runs in the push's shard, after a script in the home slot read
// the links (see shard.go).
func (s *Store) Ingest(ctx context.Context, ev otpbot.Event) (otpbot.IngestResult, error) {
	n, err := s.shards(ctx)
	if err != nil {
		return otpbot.IngestResult{}, err
	}
	now := s.now()
	at := ev.ReceivedAt
	if at.IsZero() {
		at = now
	}
	keys := ev.Keys()
	// Unrouted until the script finds a link.
	outcome, route := otpbot.IngestOutcome(ev, at)
	route = route && len(keys) > 0
	k := s.shard(shardOfGroup(ev.Group, n))
	args, err := s.ingestArgs(k, ev, now, at, route, outcome)
	if err != nil {
		return otpbot.IngestResult{}, err
	}
	if n > 1 {
		seq, targets, names, err := s.route(ctx, route, keys)
		if err != nil {
			return otpbot.IngestResult{}, err
		}
		args = append(args, seq, len(targets))
		for _, t := range targets {
			args = append(args, t)
		}
		for _, n := range names {
			args = append(args, n)
		}
	} else {
		args = append(args, "", "")
	}
	args = append(args, historyAndStateArgs(ev, keys)...)
	args = append(args, s.instance)
	// A repeat waits too: its acknowledgement is the first one the
	// provider hears when the original answer was lost.
	v, err := s.runIngest(ctx, []string{k.dedupe()}, args, s.waitAOF(ctx))
	if err != nil {
		s.signal() // the script may have run (and skipped waking us)
		return otpbot.IngestResult{}, err
	}
	if len(v) == 0 {
		return otpbot.IngestResult{}, fmt.Errorf("redis ingest: empty reply")
	}
	if dup, _ := v[0].(int64); dup == 1 {
		return otpbot.IngestResult{Duplicate: true}, nil
	}
	res := otpbot.IngestResult{Outcome: outcome}
	for _, t := range v[1:] {
		target, err := otpbot.ParseTarget(str(t))
		if err != nil {
			return otpbot.IngestResult{}, fmt.Errorf("redis ingest: %w", err)
		}
		res.Targets = append(res.Targets, target)
	}
	if len(res.Targets) > 0 {
		res.Outcome = otpbot.OutcomeQueued
		s.signal()
	}
	return res, nil
}

// ingestArgs returns the ingest script's arguments up to the event's keys
// (see the list below and ingestScript), for the shard k.
func (s *Store) ingestArgs(k keys, ev otpbot.Event, now, at time.Time, route bool, outcome otpbot.Outcome) ([]any, error) {
	red := ev.Redacted()
	evJSON, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	redJSON, err := json.Marshal(red)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	// The two history entries the script chooses from embed the redacted
	// event just encoded: no need to encode it twice more.
	entryQueued := historyEntryJSON(redJSON, otpbot.OutcomeQueued)
	entryOther := historyEntryJSON(redJSON, outcome)
	// The constant parts of the message and tasks the script creates per
	// target; it adds the ids and the target.
	msgRest, err := messageFragment(otpbot.Message{Group: ev.Group}, 0)
	if err != nil {
		return nil, fmt.Errorf("encode message: %w", err)
	}
	sendRest, err := taskFragment(otpbot.TaskSend, otpbot.PriorityCode, at)
	if err != nil {
		return nil, fmt.Errorf("encode task: %w", err)
	}
	updRest, err := taskFragment(otpbot.TaskUpdate, otpbot.PriorityUpdate, at)
	if err != nil {
		return nil, fmt.Errorf("encode task: %w", err)
	}
	keys := ev.Keys()
	args := []any{
		k.base,                                // 1
		ev.ID,                                 // 2
		us(now),                               // 3
		us(now.Add(-s.opts.DedupeWindow)),     // 4
		ms(gcTTL(s.opts.DedupeWindow)),        // 5
		boolArg(route),                        // 6
		ev.Group,                              // 7
		string(evJSON),                        // 8
		string(redJSON),                       // 9
		msgRest,                               // 10
		sendRest,                              // 11
		updRest,                               // 12
		usCeil(at),                            // 13
		fmtTime(at),                           // 14
		us(at),                                // 15
		fmtTime(now),                          // 16
		string(entryQueued),                   // 17
		string(entryOther),                    // 18
		us(at),                                // 19
		us(now.Add(-s.opts.HistoryRetention)), // 20
		s.opts.HistoryPerKey,                  // 21
		ms(gcTTL(s.opts.HistoryRetention)),    // 22
		otpbot.TaskID("", otpbot.TaskSend),    // 23
		otpbot.TaskID("", otpbot.TaskUpdate),  // 24
		string(otpbot.StateLive),              // 25
		len(keys),                             // 26
	}
	for _, key := range keys {
		args = append(args, key.String())
	}
	return args, nil
}

// route reads, in the home slot of a sharded prefix, what a push's shard
// script cannot: the next history sequence number (every event has a
// history key) and, when route is set, the targets of the unbroken links
// of keys.
func (s *Store) route(ctx context.Context, route bool, keys []otpbot.Key) (seq string, targets, names []string, err error) {
	args := []any{s.k.base, boolArg(route), len(keys)}
	for _, k := range keys {
		args = append(args, k.String())
	}
	args = append(args, cardKeyOf(keys))
	v, err := routeScript.Run(ctx, s.client, []string{s.k.historySeq()}, args...).Slice()
	if err != nil {
		return "", nil, nil, wrap("ingest: route", err)
	}
	if len(v) == 0 || len(v)%2 == 0 {
		return "", nil, nil, fmt.Errorf("redis ingest: route: reply of %d values", len(v))
	}
	for i := 1; i+1 < len(v); i += 2 {
		targets = append(targets, str(v[i]))
		names = append(names, str(v[i+1]))
	}
	return str(v[0]), targets, names, nil
}

// historyAndStateArgs are the ingest script's arguments after the targets:
// the history keys (every event's, otpbot.Event.HistoryKeys), the card key
// whose links name the card (Message.CardName), and the state a message
// takes, new or in each state it may be in (otpbot.NextState: the rule
// lives at the root, the script applies it).
func historyAndStateArgs(ev otpbot.Event, keys []otpbot.Key) []any {
	hkeys := ev.HistoryKeys()
	args := []any{len(hkeys)}
	for _, k := range hkeys {
		args = append(args, k.String())
	}
	states := otpbot.MessageStates()
	args = append(args, cardKeyOf(keys), string(otpbot.NextState("", ev)), len(states))
	for _, st := range states {
		args = append(args, string(st), string(otpbot.NextState(st, ev)))
	}
	return args
}

// cardKeyOf is the card key among an event's routing keys (its links name
// the card), "" when it has none.
func cardKeyOf(keys []otpbot.Key) string {
	if len(keys) > 0 && keys[0].Type == otpbot.KeyCard {
		return keys[0].String()
	}
	return ""
}

// boolArg encodes a flag for a script.
func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// History returns up to limit entries of key, newest first (all of them
// when limit is not positive). Entries past the retention are left out even
// before the next write prunes them. On a sharded prefix every shard holds
// the entries of its pushes, each capped at history.per_key: their newest
// are merged by the store-wide sequence number and cut to the cap.
func (s *Store) History(ctx context.Context, key otpbot.Key, limit int) ([]otpbot.HistoryEntry, error) {
	n, err := s.shards(ctx)
	if err != nil {
		return nil, err
	}
	if limit <= 0 || limit > s.opts.HistoryPerKey {
		limit = s.opts.HistoryPerKey
	}
	cmds := make([]*goredis.StringSliceCmd, n)
	err = s.forShards(ctx, n, func(p goredis.Pipeliner, i int, k keys) {
		cmds[i] = p.LRange(ctx, k.history(key.String()), 0, int64(limit)-1)
	})
	if err != nil {
		return nil, wrap("history", err)
	}
	cutoff := s.now().Add(-s.opts.HistoryRetention)
	var recs []historyRec
	for _, c := range cmds {
		for _, r := range c.Val() {
			h, ok, err := decodeHistory(r)
			if err != nil {
				return nil, err
			}
			if ok && !h.at.Before(cutoff) {
				recs = append(recs, h)
			}
		}
	}
	if n > 1 {
		slices.SortStableFunc(recs, func(a, b historyRec) int { return cmp.Compare(b.seq, a.seq) })
	}
	out := make([]otpbot.HistoryEntry, 0, min(len(recs), limit))
	for _, h := range recs[:min(len(recs), limit)] {
		out = append(out, h.entry)
	}
	return out, nil
}

// historyRec is a stored history entry: "SEQ|µs|JSON". SEQ numbers
// ingests store-wide (an entry under two keys has one SEQ); µs is the
// event's receipt, which retention goes by.
type historyRec struct {
	seq   int64
	at    time.Time
	entry otpbot.HistoryEntry
}

// decodeHistory parses a stored history entry; ok is false for one that
// does not parse as such (never written by this package).
func decodeHistory(r string) (historyRec, bool, error) {
	seq, rest, ok1 := strings.Cut(r, "|")
	ts, j, ok2 := strings.Cut(rest, "|")
	if !ok1 || !ok2 {
		return historyRec{}, false, nil
	}
	var h historyRec
	if _, err := fmt.Sscan(seq, &h.seq); err != nil {
		return h, false, nil
	}
	var micros int64
	if _, err := fmt.Sscan(ts, &micros); err != nil {
		return h, false, nil
	}
	h.at = time.UnixMicro(micros)
	if err := json.Unmarshal([]byte(j), &h.entry); err != nil {
		return h, false, fmt.Errorf("decode history entry: %w", err)
	}
	return h, true, nil
}
