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
		seq, targets, err := s.route(ctx, route, keys)
		if err != nil {
			return otpbot.IngestResult{}, err
		}
		args.Seq, args.Given, args.Targets = seq, "1", targets
	}
	// A repeat waits too: its acknowledgement is the first one the
	// provider hears when the original answer was lost.
	v, err := s.runIngest(ctx, []string{k.dedupe()}, args.argv(), s.waitAOF(ctx))
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

// ingestArgs returns the ingest script's arguments for the shard k, with
// no targets given (the script routes the push itself).
func (s *Store) ingestArgs(k keys, ev otpbot.Event, now, at time.Time, route bool, outcome otpbot.Outcome) (*ingestArgs, error) {
	red := ev.Redacted()
	evJSON, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	redJSON, err := json.Marshal(red)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
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
	a := &ingestArgs{
		B: k.base, ID: ev.ID, Now: us(now),
		Ddcut: us(now.Add(-s.opts.DedupeWindow)), Ddgc: ms(gcTTL(s.opts.DedupeWindow)),
		Route: boolArg(route), Group: ev.Group,
		EvJSON: string(evJSON), RedJSON: string(redJSON),
		MsgTail: openTail(msgRest), SendTail: openTail(sendRest), UpdTail: openTail(updRest),
		DueScore: usCeil(at), DueAt: fmtTime(at), AtUs: us(at), NowStr: fmtTime(now),
		// The history entry is the redacted event with one of these
		// outcomes, as historyEntryJSON writes it.
		QueuedTail: historyTail(otpbot.OutcomeQueued), OtherTail: historyTail(outcome),
		Hcut: us(now.Add(-s.opts.HistoryRetention)),
		Cap:  s.opts.HistoryPerKey, Hgc: ms(gcTTL(s.opts.HistoryRetention)),
		CodePrio: int(otpbot.PriorityCode), UpdatePrio: int(otpbot.PriorityUpdate),
		Seq: "", Given: "0", Instance: s.instance,
		GroupJSON: groupJSON(ev.Group), Prune: boolArg(s.pushes.Add(1)%pruneEvery == 1),
	}
	keys := ev.Keys()
	for _, key := range keys {
		a.Keys = append(a.Keys, key.String())
	}
	// The history keys (every event's, otpbot.Event.HistoryKeys), the card
	// key whose links name the card (Message.CardName), and the state a
	// message takes, new or in each state it may be in that it changes
	// (otpbot.NextState: the rule lives at the root, the script applies it).
	for _, key := range ev.HistoryKeys() {
		a.Hkeys = append(a.Hkeys, key.String())
	}
	a.CardKey, a.NewState = cardKeyOf(keys), string(otpbot.NextState("", ev))
	for _, st := range otpbot.MessageStates() {
		if next := otpbot.NextState(st, ev); next != st {
			a.Moves = append(a.Moves, stateRec{From: string(st), To: string(next)})
		}
	}
	return a, nil
}

// route reads, in the home slot of a sharded prefix, what a push's shard
// script cannot: the next history sequence number (every event has a
// history key) and, when route is set, the targets of the unbroken links
// of keys, each with its link's name of the card.
func (s *Store) route(ctx context.Context, route bool, keys []otpbot.Key) (seq string, targets []targetRec, err error) {
	args := routeArgs{B: s.k.base, Route: boolArg(route), CardKey: cardKeyOf(keys)}
	for _, k := range keys {
		args.Keys = append(args.Keys, k.String())
	}
	v, err := routeScript.Run(ctx, s.client, []string{s.k.historySeq()}, args.argv()...).Slice()
	if err != nil {
		return "", nil, wrap("ingest: route", err)
	}
	if len(v) == 0 || len(v)%2 == 0 {
		return "", nil, fmt.Errorf("redis ingest: route: reply of %d values", len(v))
	}
	for i := 1; i+1 < len(v); i += 2 {
		targets = append(targets, targetRec{T: str(v[i]), Name: str(v[i+1])})
	}
	return str(v[0]), targets, nil
}

// pruneEvery is how often (one push in pruneEvery, per store) Ingest
// drops what expired from the dedupe set, the indexes and the history
// lists it writes: often enough that they stay near their live size, and
// rarely enough that the commands cost nothing per push.
const pruneEvery = 16

// groupJSON returns group as a JSON string without its closing quote.
func groupJSON(group string) string {
	b := appendJSONString(make([]byte, 0, len(group)+2), group)
	return string(b[:len(b)-1])
}

// luaString returns s as a Lua string literal (s is printable ASCII: a
// constant of the package or of otpbot).
func luaString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
}

// jsonContent returns s as the content of a JSON string (escaped, without
// its quotes).
func jsonContent(s string) string {
	b := appendJSONString(make([]byte, 0, len(s)+2), s)
	return string(b[1 : len(b)-1])
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
