package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
)

// A message is a hash: "j" holds its JSON without the parts that change
// most (so Ingest can update them without decoding JSON in Lua), "e" the
// event JSON, "s" the state and "u" UpdatedAt in RFC 3339 (compared as text
// by UpdateMessage). Indexes: "mc:CHAT" and "ms" are sorted sets of message
// ids scored by when (real time, ms) a finished message is forgotten.

// messageArgs returns the script arguments that write m (see putMsg). A message in a final state loses its code and link here,
// and the script drops its Rendered when that is the live version's.
func (s *Store) messageArgs(m otpbot.Message) (msgRec, error) {
	final := m.State.Final()
	if final {
		m.Event = m.Event.Redacted()
	}
	head, err := messageFragment(m, withIDTarget|withRendered)
	if err != nil {
		return msgRec{}, fmt.Errorf("encode message %s: %w", m.ID, err)
	}
	headBare, err := messageFragment(m, withIDTarget)
	if err != nil {
		return msgRec{}, fmt.Errorf("encode message %s: %w", m.ID, err)
	}
	ev, err := json.Marshal(m.Event)
	if err != nil {
		return msgRec{}, fmt.Errorf("encode message %s: %w", m.ID, err)
	}
	f := "0"
	if final {
		f = "1"
	}
	return msgRec{ID: m.ID, Chat: strconv.FormatInt(m.Target.ChatID, 10), Head: head, HeadBare: headBare,
		Rendered: m.Rendered, EvJSON: string(ev), State: string(m.State), Updated: fmtTime(m.UpdatedAt),
		Final: f, Gc: ms(s.finishedMessageTTL())}, nil
}

// decodeMessage rebuilds a message from its hash fields; ok is false when
// the hash does not exist.
func decodeMessage(j, e, st, u any) (otpbot.Message, bool, error) {
	if isNil(j) {
		return otpbot.Message{}, false, nil
	}
	var m otpbot.Message
	if err := json.Unmarshal([]byte(str(j)), &m); err != nil {
		return m, false, fmt.Errorf("decode message: %w", err)
	}
	if err := json.Unmarshal([]byte(str(e)), &m.Event); err != nil {
		return m, false, fmt.Errorf("decode message %s event: %w", m.ID, err)
	}
	m.State = otpbot.MessageState(str(st))
	t, err := parseTime(str(u))
	if err != nil {
		return m, false, fmt.Errorf("decode message %s: %w", m.ID, err)
	}
	m.UpdatedAt = t
	return m, true, nil
}

// Message returns the message with the given ID.
func (s *Store) Message(ctx context.Context, id string) (otpbot.Message, bool, error) {
	n, err := s.shards(ctx)
	if err != nil {
		return otpbot.Message{}, false, err
	}
	v, err := s.client.HMGet(ctx, s.msgKeys(n, id).message(id), "j", "e", "s", "u").Result()
	if err != nil {
		return otpbot.Message{}, false, wrap("message", err)
	}
	return decodeMessage(v[0], v[1], v[2], v[3])
}

// MessagesForChat lists a chat's messages, every topic included, ordered
// by ID.
func (s *Store) MessagesForChat(ctx context.Context, chatID int64) ([]otpbot.Message, error) {
	return s.messagesIn(ctx, func(k keys) string { return k.chatMessages(chatID) })
}

// LiveMessages lists the messages in StateLive, from the index of every
// message (of every shard).
func (s *Store) LiveMessages(ctx context.Context) ([]otpbot.Message, error) {
	all, err := s.messagesIn(ctx, func(k keys) string { return k.messages() })
	if err != nil {
		return nil, err
	}
	live := all[:0]
	for _, m := range all {
		if m.State == otpbot.StateLive {
			live = append(live, m)
		}
	}
	return live, nil
}

// messagesIn reads the messages listed in the index index(k) of every
// shard k, ordered by ID. Index entries whose message Redis already
// forgot are skipped.
func (s *Store) messagesIn(ctx context.Context, index func(keys) string) ([]otpbot.Message, error) {
	n, err := s.shards(ctx)
	if err != nil {
		return nil, err
	}
	lists := make([]*goredis.StringSliceCmd, n)
	err = s.forShards(ctx, n, func(p goredis.Pipeliner, i int, k keys) {
		lists[i] = p.ZRange(ctx, index(k), 0, -1)
	})
	if err != nil {
		return nil, wrap("messages", err)
	}
	type ref struct {
		id string
		k  keys
	}
	var ids []ref
	for i, l := range lists {
		for _, id := range l.Val() {
			ids = append(ids, ref{id, s.shard(i)})
		}
	}
	slices.SortFunc(ids, func(a, b ref) int { return strings.Compare(a.id, b.id) })
	cmds := make([]*goredis.SliceCmd, len(ids))
	if len(ids) > 0 {
		_, err = s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, r := range ids {
				cmds[i] = p.HMGet(ctx, r.k.message(r.id), "j", "e", "s", "u")
			}
			return nil
		})
		if err != nil {
			return nil, wrap("messages", err)
		}
	}
	var out []otpbot.Message
	for _, c := range cmds {
		v := c.Val()
		m, ok, err := decodeMessage(v[0], v[1], v[2], v[3])
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// putMessage writes m in its shard as it is (Import, and a message
// completed with a task of another shard).
func (s *Store) putMessage(ctx context.Context, n int, m otpbot.Message) error {
	margs, err := s.messageArgs(m)
	if err != nil {
		return err
	}
	k := s.msgKeys(n, m.ID)
	return wrap("put message", putMessageScript.Run(ctx, s.client,
		[]string{k.message(m.ID)}, (&putMessageArgs{B: k.base, Msg: margs}).argv()...).Err())
}

// UpdateMessage replaces msg and enqueues next, provided the stored
// message's UpdatedAt is still prev.
func (s *Store) UpdateMessage(ctx context.Context, prev time.Time, msg otpbot.Message, next ...otpbot.Task) error {
	n, err := s.shards(ctx)
	if err != nil {
		return err
	}
	k := s.msgKeys(n, msg.ID)
	next, apart := splitApart(n, shardOfGroup(groupOfMessage(msg.ID), n), next)
	margs, err := s.messageArgs(msg)
	if err != nil {
		return err
	}
	targs, err := taskArgs(next)
	if err != nil {
		return err
	}
	args := updateMessageArgs{B: k.base, PrevUpdated: fmtTime(prev), Msg: margs, Instance: s.instance, Tasks: targs}
	r, err := updateMessageScript.Run(ctx, s.client, []string{k.message(msg.ID)}, args.argv()...).Int()
	if err != nil {
		s.signalIf(len(next) > 0) // the script may have run
		return wrap("update message", err)
	}
	if err := scriptResult("update message", msg.ID, r); err != nil {
		return err
	}
	if len(next) > 0 {
		s.signal()
	}
	return s.enqueueApart(ctx, n, apart)
}
