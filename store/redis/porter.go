package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
)

// Export calls fn for every record: the installation key (when there is
// one), links, history (oldest first, each
// stored event once however many keys it is under), messages, tasks (lease
// dropped), invites still valid and dedupe marks still inside the window.
// It reads without a snapshot: a store in use may change while it runs.
func (s *Store) Export(ctx context.Context, fn func(otpbot.Record) error) error {
	for _, step := range []func(context.Context, func(otpbot.Record) error) error{
		s.exportKey, s.exportLinks, s.exportChats, s.exportHistory, s.exportMessages, s.exportTasks, s.exportInvites, s.exportDedupe,
	} {
		if err := step(ctx, fn); err != nil {
			return err
		}
	}
	return nil
}

// exportKey emits the installation key first, so that Import applies it
// before any dedupe mark. It never creates one.
func (s *Store) exportKey(ctx context.Context, fn func(otpbot.Record) error) error {
	key, err := s.readKey(ctx)
	if err != nil || key == nil {
		return err
	}
	return fn(otpbot.Record{InstallationKey: key})
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
	keys, err := s.client.ZRange(ctx, s.k.historyIndex(), 0, -1).Result()
	if err != nil {
		return wrap("export history", err)
	}
	cutoff := s.now().Add(-s.opts.HistoryRetention)
	bySeq := map[int64]historyRec{}
	for _, key := range keys {
		recs, err := s.client.LRange(ctx, s.k.history(key), 0, -1).Result()
		if err != nil {
			return wrap("export history", err)
		}
		for _, r := range recs {
			h, ok, err := decodeHistory(r)
			if err != nil {
				return err
			}
			if ok && !h.at.Before(cutoff) {
				bySeq[h.seq] = h
			}
		}
	}
	seqs := make([]int64, 0, len(bySeq))
	for seq := range bySeq {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		e := bySeq[seq].entry
		if err := fn(otpbot.Record{History: &e}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) exportMessages(ctx context.Context, fn func(otpbot.Record) error) error {
	msgs, err := s.messagesIn(ctx, s.k.messages())
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
	for _, p := range priorities {
		ids, err := s.client.ZRange(ctx, s.k.queue(p), 0, -1).Result()
		if err != nil {
			return wrap("export tasks", err)
		}
		cmds := make([]*goredis.StringCmd, len(ids))
		if len(ids) > 0 {
			_, err = s.client.Pipelined(ctx, func(pl goredis.Pipeliner) error {
				for i, id := range ids {
					cmds[i] = pl.HGet(ctx, s.k.task(id), "j")
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
	cut := us(s.now().Add(-s.opts.DedupeWindow))
	zs, err := s.client.ZRangeByScoreWithScores(ctx, s.k.dedupe(), &goredis.ZRangeBy{Min: "(" + cut, Max: "+inf"}).Result()
	if err != nil {
		return wrap("export dedupe", err)
	}
	for _, z := range zs {
		m := otpbot.DedupeMark{ID: str(z.Member), Seen: time.UnixMicro(int64(z.Score)).UTC()}
		if err := fn(otpbot.Record{Dedupe: &m}); err != nil {
			return err
		}
	}
	return nil
}

// Import writes records as Export emits them, keeping their ids and times.
// History entries go under each of their event's keys; tasks arrive
// unleased. An installation key is applied first, as otpbot.Porter
// describes; when it conflicts nothing is written.
func (s *Store) Import(ctx context.Context, recs []otpbot.Record) error {
	key, err := importedKey(recs)
	if err != nil {
		return err
	}
	if key != nil {
		if err := s.importKey(ctx, key); err != nil {
			return err
		}
	}
	now := s.now()
	var tasks []otpbot.Task
	for _, r := range recs {
		var err error
		switch {
		case r.InstallationKey != nil:
			// applied above
		case r.Link != nil:
			err = s.putLink(ctx, *r.Link, r.Link.Broken, r.Link.BrokenReason)
		case r.History != nil:
			err = s.importHistory(ctx, *r.History, now)
		case r.Message != nil:
			var margs []any
			if margs, err = s.messageArgs(*r.Message); err == nil {
				err = wrap("import message", putMessageScript.Run(ctx, s.client,
					[]string{s.k.message(r.Message.ID)}, append([]any{s.k.base}, margs...)...).Err())
			}
		case r.Task != nil:
			tasks = append(tasks, *r.Task)
		case r.Invite != nil:
			err = s.CreateInvite(ctx, *r.Invite)
		case r.Chat != nil:
			err = s.importChat(ctx, *r.Chat)
		case r.Dedupe != nil:
			_, err = s.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
				p.ZAdd(ctx, s.k.dedupe(), goredis.Z{Score: float64(r.Dedupe.Seen.UnixMicro()), Member: r.Dedupe.ID})
				p.PExpire(ctx, s.k.dedupe(), gcTTL(s.opts.DedupeWindow))
				return nil
			})
			err = wrap("import dedupe", err)
		default:
			err = fmt.Errorf("import: empty record")
		}
		if err != nil {
			return err
		}
	}
	return s.Enqueue(ctx, tasks...)
}

// importHistory stores one history entry under each of its event's
// history keys.
func (s *Store) importHistory(ctx context.Context, h otpbot.HistoryEntry, now time.Time) error {
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
	args := []any{s.k.base, us(at), string(j), s.opts.HistoryPerKey, us(now.Add(-s.opts.HistoryRetention)),
		ms(gcTTL(s.opts.HistoryRetention)), len(keys)}
	for _, k := range keys {
		args = append(args, k.String())
	}
	return wrap("import history", importHistoryScript.Run(ctx, s.client, []string{s.k.historySeq()}, args...).Err())
}
