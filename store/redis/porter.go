package redis

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
)

// Export calls fn for every record: the installation secret (when there is
// one), links, history (oldest first, each
// stored event once however many keys it is under), messages, tasks (lease
// dropped), invites still valid and dedupe marks still inside the window.
// It reads without a snapshot: a store in use may change while it runs.
func (s *Store) Export(ctx context.Context, fn func(otpbot.Record) error) error {
	for _, step := range []func(context.Context, func(otpbot.Record) error) error{
		s.exportSecret, s.exportLinks, s.exportChats, s.exportHistory, s.exportMessages, s.exportTasks, s.exportInvites, s.exportDedupe,
	} {
		if err := step(ctx, fn); err != nil {
			return err
		}
	}
	return nil
}

// exportSecret emits the installation secret first, so that Import applies it
// before any dedupe mark. It never creates one.
func (s *Store) exportSecret(ctx context.Context, fn func(otpbot.Record) error) error {
	key, err := s.readKey(ctx)
	if err != nil || key == nil {
		return err
	}
	return fn(otpbot.Record{InstallationSecret: key})
}

func (s *Store) exportLinks(ctx context.Context, fn func(otpbot.Record) error) error {
	keys, err := s.client.SMembers(ctx, s.k.linkKeys()).Result()
	if err != nil {
		return wrap("export links", err)
	}
	slices.Sort(keys)
	for _, ks := range keys {
		key, err := otpbot.ParseKey(ks)
		if err != nil {
			return fmt.Errorf("export links: %w", err)
		}
		links, err := s.LinksForKey(ctx, key)
		if err != nil {
			return err
		}
		sort.Slice(links, func(i, j int) bool { return links[i].Target.String() < links[j].Target.String() })
		for i := range links {
			if err := fn(otpbot.Record{Link: &links[i]}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) exportHistory(ctx context.Context, fn func(otpbot.Record) error) error {
	n, err := s.shards(ctx)
	if err != nil {
		return err
	}
	cutoff := s.now().Add(-s.opts.HistoryRetention)
	// An entry under two keys (card and customer) is one event: keyed by
	// its sequence number and event id (a sequence number a failover
	// handed out twice stays two entries).
	type entryID struct {
		seq int64
		id  string
	}
	byID := map[entryID]historyRec{}
	for i := range n {
		k := s.shard(i)
		keys, err := s.client.ZRange(ctx, k.historyIndex(), 0, -1).Result()
		if err != nil {
			return wrap("export history", err)
		}
		for _, key := range keys {
			// The list may hold up to a quarter more than the cap until
			// its next trim (see putHistory).
			recs, err := s.client.LRange(ctx, k.history(key), 0, int64(s.opts.HistoryPerKey)-1).Result()
			if err != nil {
				return wrap("export history", err)
			}
			for _, r := range recs {
				h, ok, err := decodeHistory(r)
				if err != nil {
					return err
				}
				if ok && !h.at.Before(cutoff) {
					byID[entryID{h.seq, h.entry.Event.ID}] = h
				}
			}
		}
	}
	ids := make([]entryID, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b entryID) int { return cmp.Or(cmp.Compare(a.seq, b.seq), strings.Compare(a.id, b.id)) })
	for _, id := range ids {
		e := byID[id].entry
		if err := fn(otpbot.Record{History: &e}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) exportMessages(ctx context.Context, fn func(otpbot.Record) error) error {
	msgs, err := s.messagesIn(ctx, keys.messages)
	if err != nil {
		return err
	}
	for i := range msgs {
		if err := fn(otpbot.Record{Message: &msgs[i]}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) exportTasks(ctx context.Context, fn func(otpbot.Record) error) error {
	n, err := s.shards(ctx)
	if err != nil {
		return err
	}
	for _, p := range priorities {
		for i := range n {
			if err := s.exportQueue(ctx, s.shard(i), p, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// exportQueue emits the tasks of one priority of one shard.
func (s *Store) exportQueue(ctx context.Context, k keys, p otpbot.Priority, fn func(otpbot.Record) error) error {
	ids, err := s.client.ZRange(ctx, k.queue(p), 0, -1).Result()
	if err != nil {
		return wrap("export tasks", err)
	}
	cmds := make([]*goredis.StringCmd, len(ids))
	if len(ids) > 0 {
		_, err = s.client.Pipelined(ctx, func(pl goredis.Pipeliner) error {
			for i, id := range ids {
				cmds[i] = pl.HGet(ctx, k.task(id), "j")
			}
			return nil
		})
		if err != nil && !isRedisNil(err) {
			return wrap("export tasks", err)
		}
	}
	for _, c := range cmds {
		j, err := c.Result()
		if isRedisNil(err) {
			continue
		}
		var t otpbot.Task
		if err := json.Unmarshal([]byte(j), &t); err != nil {
			return fmt.Errorf("decode task: %w", err)
		}
		if err := fn(otpbot.Record{Task: &t}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) exportInvites(ctx context.Context, fn func(otpbot.Record) error) error {
	hashes, err := s.client.ZRange(ctx, s.k.invites(), 0, -1).Result()
	if err != nil {
		return wrap("export invites", err)
	}
	slices.Sort(hashes)
	now := s.now()
	for _, h := range hashes {
		j, err := s.client.HGet(ctx, s.k.invite(h), "j").Result()
		if isRedisNil(err) {
			continue
		}
		if err != nil {
			return wrap("export invites", err)
		}
		var inv otpbot.Invite
		if err := json.Unmarshal([]byte(j), &inv); err != nil {
			return fmt.Errorf("decode invite: %w", err)
		}
		if !now.Before(inv.ExpiresAt) {
			continue
		}
		if err := fn(otpbot.Record{Invite: &inv}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) exportDedupe(ctx context.Context, fn func(otpbot.Record) error) error {
	n, err := s.shards(ctx)
	if err != nil {
		return err
	}
	cut := us(s.now().Add(-s.opts.DedupeWindow))
	// Import puts a mark in every shard of a sharded prefix: one record
	// per id, the latest sighting.
	seen := map[string]time.Time{}
	var ids []string
	for i := range n {
		zs, err := s.client.ZRangeByScoreWithScores(ctx, s.shard(i).dedupe(), &goredis.ZRangeBy{Min: "(" + cut, Max: "+inf"}).Result()
		if err != nil {
			return wrap("export dedupe", err)
		}
		for _, z := range zs {
			id, at := str(z.Member), time.UnixMicro(int64(z.Score)).UTC()
			prev, ok := seen[id]
			if !ok {
				ids = append(ids, id)
			}
			if !ok || at.After(prev) {
				seen[id] = at
			}
		}
	}
	for _, id := range ids {
		m := otpbot.DedupeMark{ID: id, Seen: seen[id]}
		if err := fn(otpbot.Record{Dedupe: &m}); err != nil {
			return err
		}
	}
	return nil
}

// Import writes records as Export emits them, keeping their ids and times.
// History entries go under each of their event's keys; tasks arrive
// unleased. An installation secret is applied first, as otpbot.Porter
// describes; when it conflicts nothing is written.
func (s *Store) Import(ctx context.Context, recs []otpbot.Record) error {
	key, err := otpbot.ImportedSecret(recs)
	if err != nil {
		return err
	}
	if key != nil {
		if err := s.importSecret(ctx, key); err != nil {
			return err
		}
	}
	n, err := s.shards(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	var tasks []otpbot.Task
	for _, r := range recs {
		var err error
		switch {
		case r.InstallationSecret != nil:
			// applied above
		case r.Link != nil:
			err = s.putLink(ctx, *r.Link, r.Link.Broken, r.Link.BrokenReason)
		case r.History != nil:
			err = s.importHistory(ctx, n, *r.History, now)
		case r.Message != nil:
			err = s.putMessage(ctx, n, *r.Message)
		case r.Task != nil:
			tasks = append(tasks, *r.Task)
		case r.Invite != nil:
			err = s.CreateInvite(ctx, *r.Invite)
		case r.Chat != nil:
			err = s.importChat(ctx, *r.Chat)
		case r.Dedupe != nil:
			// The mark's push group is unknown here, so on a sharded
			// prefix every shard gets the mark: a repeat is then
			// recognised in whichever shard its group leads to.
			err = wrap("import dedupe", s.forShards(ctx, n, func(p goredis.Pipeliner, _ int, k keys) {
				p.ZAdd(ctx, k.dedupe(), goredis.Z{Score: float64(r.Dedupe.Seen.UnixMicro()), Member: r.Dedupe.ID})
				p.PExpire(ctx, k.dedupe(), gcTTL(s.opts.DedupeWindow))
			}))
		default:
			err = fmt.Errorf("import: empty record")
		}
		if err != nil {
			return err
		}
	}
	return s.Enqueue(ctx, tasks...)
}

// importHistory stores one history entry under each of its event's history keys,
// in the shard of its event's group.
func (s *Store) importHistory(ctx context.Context, n int, h otpbot.HistoryEntry, now time.Time) error {
	h.Event = h.Event.Redacted()
	keys := h.Event.HistoryKeys()
	j, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("encode history entry: %w", err)
	}
	at := h.Event.ReceivedAt
	if at.IsZero() {
		at = now
	}
	seq := ""
	if n > 1 {
		// The sequence is store-wide, in the home slot.
		v, err := s.client.Incr(ctx, s.k.historySeq()).Result()
		if err != nil {
			return wrap("import history", err)
		}
		seq = strconv.FormatInt(v, 10)
	}
	k := s.shard(shardOfGroup(h.Event.Group, n))
	args := importHistoryArgs{B: k.base, At: us(at), Entry: string(j), Cap: s.opts.HistoryPerKey,
		Hcut: us(now.Add(-s.opts.HistoryRetention)), Gc: ms(gcTTL(s.opts.HistoryRetention)), Seq: seq}
	for _, key := range keys {
		args.Keys = append(args.Keys, key.String())
	}
	return wrap("import history", importHistoryScript.Run(ctx, s.client, []string{k.historySeq()}, args.argv()...).Err())
}
