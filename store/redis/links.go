package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/otpbot/otpbot"
)

// Links: "lk:KEY" is a hash target → link JSON (never marked broken in the
// JSON), "lb:KEY" a hash target → reason for the broken ones, "lc:CHAT" the
// set of "TARGET KEY" a chat is linked by, and "lkeys" the set of keys with
// links (for Export). Links do not expire.

// Link adds or renews a link, clearing Broken.
func (s *Store) Link(ctx context.Context, l otpbot.Link) error {
	if !l.Key.Linkable() {
		return fmt.Errorf("store: link %s: %w", l.Key.Type, otpbot.ErrNotLinkable)
	}
	l.Broken, l.BrokenReason = false, ""
	return s.putLink(ctx, l, false, "")
}

// putLink writes l, broken or not.
func (s *Store) putLink(ctx context.Context, l otpbot.Link, broken bool, reason string) error {
	l.Broken, l.BrokenReason = false, ""
	j, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("encode link: %w", err)
	}
	key := l.Key.String()
	args := linkArgs{B: s.k.base, Key: key, Target: l.Target.String(), Chat: strconv.FormatInt(l.Target.ChatID, 10),
		LinkJSON: string(j), Broken: boolArg(broken), Reason: reason}
	err = linkScript.Run(ctx, s.client, []string{s.k.links(key)}, args.argv()...).Err()
	return wrap("link", err)
}

// Unlink removes the link of key to target.
func (s *Store) Unlink(ctx context.Context, key otpbot.Key, target otpbot.Target) (bool, error) {
	k := key.String()
	args := unlinkArgs{B: s.k.base, Key: k, Target: target.String(), Chat: strconv.FormatInt(target.ChatID, 10)}
	r, err := unlinkScript.Run(ctx, s.client, []string{s.k.links(k)}, args.argv()...).Int()
	if err != nil {
		return false, wrap("unlink", err)
	}
	return r == 1, nil
}

// LinksForKey lists the links of a key, broken ones included.
func (s *Store) LinksForKey(ctx context.Context, key otpbot.Key) ([]otpbot.Link, error) {
	k := key.String()
	v, err := linksForKeyScript.Run(ctx, s.client, []string{s.k.links(k)},
		(&linksForKeyArgs{B: s.k.base, Key: k}).argv()...).Slice()
	if err != nil {
		return nil, wrap("links for key", err)
	}
	return decodeLinks(v)
}

// LinksForChat lists the links of a chat, every topic included.
func (s *Store) LinksForChat(ctx context.Context, chatID int64) ([]otpbot.Link, error) {
	v, err := linksForChatScript.Run(ctx, s.client, []string{s.k.chatLinks(chatID)},
		(&linksForChatArgs{B: s.k.base}).argv()...).Slice()
	if err != nil {
		return nil, wrap("links for chat", err)
	}
	return decodeLinks(v)
}

// MarkBroken marks every link to exactly target as broken.
func (s *Store) MarkBroken(ctx context.Context, target otpbot.Target, reason string) error {
	args := markBrokenArgs{B: s.k.base, Target: target.String(), Reason: reason}
	err := markBrokenScript.Run(ctx, s.client, []string{s.k.chatLinks(target.ChatID)}, args.argv()...).Err()
	return wrap("mark broken", err)
}

// decodeLinks turns {link JSON, broken reason or nil} rows into links.
func decodeLinks(v []any) ([]otpbot.Link, error) {
	out := make([]otpbot.Link, 0, len(v))
	for _, row := range v {
		r, _ := row.([]any)
		if len(r) == 0 {
			return nil, fmt.Errorf("redis links: unexpected reply %v", row)
		}
		var l otpbot.Link
		if err := json.Unmarshal([]byte(str(r[0])), &l); err != nil {
			return nil, fmt.Errorf("decode link: %w", err)
		}
		if len(r) > 1 && !isNil(r[1]) {
			l.Broken, l.BrokenReason = true, str(r[1])
		}
		out = append(out, l)
	}
	return out, nil
}
