package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/otpbot/otpbot"
)

// linkKey is the links bucket key of key → target; the 0x00 separator keeps
// "card:C1" from matching "card:C10" in a prefix scan.
func linkKey(key otpbot.Key, target otpbot.Target) []byte {
	return []byte(key.String() + "\x00" + target.String())
}

// chatLinkKey is the links_by_chat key of a link.
func chatLinkKey(key otpbot.Key, target otpbot.Target) []byte {
	return append(chatTargetPrefix(target), key.String()...)
}

// chatTargetPrefix is the links_by_chat prefix of one exact target.
func chatTargetPrefix(target otpbot.Target) []byte {
	return append(append(chatKey(target.ChatID), target.String()...), 0)
}

// putLink stores l as given (Import keeps Broken; Link clears it first).
func putLink(tx *bbolt.Tx, l otpbot.Link) error {
	v, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("encode link: %w", err)
	}
	lk := linkKey(l.Key, l.Target)
	if err := tx.Bucket(bLinks).Put(lk, v); err != nil {
		return fmt.Errorf("put link: %w", err)
	}
	if err := tx.Bucket(bLinksByChat).Put(chatLinkKey(l.Key, l.Target), lk); err != nil {
		return fmt.Errorf("index link: %w", err)
	}
	return nil
}

func decodeLink(v []byte) (otpbot.Link, error) {
	var l otpbot.Link
	if err := json.Unmarshal(v, &l); err != nil {
		return otpbot.Link{}, fmt.Errorf("decode link: %w", err)
	}
	return l, nil
}

// linksForKey lists the links of key.
func linksForKey(tx *bbolt.Tx, key otpbot.Key) ([]otpbot.Link, error) {
	prefix := []byte(key.String() + "\x00")
	var out []otpbot.Link
	c := tx.Bucket(bLinks).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		l, err := decodeLink(v)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// linksWithPrefix lists the links whose links_by_chat key starts with prefix.
func linksWithPrefix(tx *bbolt.Tx, prefix []byte) ([]otpbot.Link, error) {
	links := tx.Bucket(bLinks)
	var out []otpbot.Link
	c := tx.Bucket(bLinksByChat).Cursor()
	for k, lk := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, lk = c.Next() {
		v := links.Get(lk)
		if v == nil {
			continue
		}
		l, err := decodeLink(v)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// Link adds or renews a link, clearing Broken.
func (s *Store) Link(ctx context.Context, l otpbot.Link) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: link: %w", err)
	}
	if !l.Key.Linkable() {
		return fmt.Errorf("store: link %s: %w", l.Key.Type, otpbot.ErrNotLinkable)
	}
	l.Broken, l.BrokenReason = false, ""
	return wrap("link", s.db.Update(func(tx *bbolt.Tx) error { return putLink(tx, l) }))
}

// Unlink removes the link of key to target.
func (s *Store) Unlink(ctx context.Context, key otpbot.Key, target otpbot.Target) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("store: unlink: %w", err)
	}
	var found bool
	err := s.db.Update(func(tx *bbolt.Tx) error {
		lk := linkKey(key, target)
		found = tx.Bucket(bLinks).Get(lk) != nil
		if !found {
			return nil
		}
		if err := tx.Bucket(bLinks).Delete(lk); err != nil {
			return fmt.Errorf("delete link: %w", err)
		}
		if err := tx.Bucket(bLinksByChat).Delete(chatLinkKey(key, target)); err != nil {
			return fmt.Errorf("unindex link: %w", err)
		}
		return nil
	})
	if err != nil {
		return false, wrap("unlink", err)
	}
	return found, nil
}

// LinksForKey lists the links of key, broken ones included.
func (s *Store) LinksForKey(ctx context.Context, key otpbot.Key) ([]otpbot.Link, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: links for key: %w", err)
	}
	var out []otpbot.Link
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		out, err = linksForKey(tx, key)
		return err
	})
	if err != nil {
		return nil, wrap("links for key", err)
	}
	return out, nil
}

// LinksForChat lists the links of chat, every topic included.
func (s *Store) LinksForChat(ctx context.Context, chatID int64) ([]otpbot.Link, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: links for chat: %w", err)
	}
	var out []otpbot.Link
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		out, err = linksWithPrefix(tx, chatKey(chatID))
		return err
	})
	if err != nil {
		return nil, wrap("links for chat", err)
	}
	return out, nil
}

// MarkBroken marks every link to target (that chat and topic) as broken.
func (s *Store) MarkBroken(ctx context.Context, target otpbot.Target, reason string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: mark broken: %w", err)
	}
	return wrap("mark broken", s.db.Update(func(tx *bbolt.Tx) error {
		links, err := linksWithPrefix(tx, chatTargetPrefix(target))
		if err != nil {
			return err
		}
		for _, l := range links {
			l.Broken, l.BrokenReason = true, reason
			if err := putLink(tx, l); err != nil {
				return err
			}
		}
		return nil
	}))
}

// putInvite stores inv under its hash.
func putInvite(tx *bbolt.Tx, inv otpbot.Invite) error {
	v, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("encode invite: %w", err)
	}
	if err := tx.Bucket(bInvites).Put([]byte(inv.Hash), v); err != nil {
		return fmt.Errorf("put invite: %w", err)
	}
	return nil
}

// CreateInvite stores an invite.
func (s *Store) CreateInvite(ctx context.Context, inv otpbot.Invite) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: create invite: %w", err)
	}
	if !inv.Key.Linkable() {
		return fmt.Errorf("store: create invite for %s: %w", inv.Key.Type, otpbot.ErrNotLinkable)
	}
	return wrap("create invite", s.db.Update(func(tx *bbolt.Tx) error { return putInvite(tx, inv) }))
}

// RedeemInvite consumes the invite and links target to its key in one
// transaction; bbolt's single writer makes it single-use.
func (s *Store) RedeemInvite(ctx context.Context, hash string, target otpbot.Target, now time.Time) (otpbot.Invite, error) {
	if err := ctx.Err(); err != nil {
		return otpbot.Invite{}, fmt.Errorf("store: redeem invite: %w", err)
	}
	var inv otpbot.Invite
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bInvites)
		v := b.Get([]byte(hash))
		if v == nil {
			return otpbot.ErrNotFound
		}
		if err := json.Unmarshal(v, &inv); err != nil {
			return fmt.Errorf("decode invite: %w", err)
		}
		if !now.Before(inv.ExpiresAt) {
			return otpbot.ErrNotFound // pruned later
		}
		if err := b.Delete([]byte(hash)); err != nil {
			return fmt.Errorf("delete invite: %w", err)
		}
		return putLink(tx, otpbot.Link{Key: inv.Key, Target: target, CreatedAt: now})
	})
	if err != nil {
		return otpbot.Invite{}, wrap("redeem invite", err)
	}
	return inv, nil
}

// Once returns true the first time key is seen within ttl.
func (s *Store) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("store: once: %w", err)
	}
	var first bool
	err := s.db.Update(func(tx *bbolt.Tx) error {
		now := s.now()
		b, byTime := tx.Bucket(bOnce), tx.Bucket(bOnceByTime)
		old := b.Get([]byte(key))
		first = false
		if len(old) == 8 {
			if now.Before(keyTime(uint64FromBytes(old))) {
				return nil
			}
			if err := byTime.Delete(append(clone(old), key...)); err != nil {
				return fmt.Errorf("once index: %w", err)
			}
		}
		first = true
		exp := appendTime(nil, now.Add(ttl))
		if err := b.Put([]byte(key), exp); err != nil {
			return fmt.Errorf("once: %w", err)
		}
		if err := byTime.Put(append(exp, key...), nil); err != nil {
			return fmt.Errorf("once index: %w", err)
		}
		return nil
	})
	if err != nil {
		return false, wrap("once", err)
	}
	return first, nil
}

// leaseRecord is a named lease as stored.
type leaseRecord struct {
	Owner string    `json:"owner"`
	Until time.Time `json:"until"`
}

// AcquireLease takes or renews the named lease for owner.
func (s *Store) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("store: acquire lease: %w", err)
	}
	var got bool
	err := s.db.Update(func(tx *bbolt.Tx) error {
		now := s.now()
		b := tx.Bucket(bLeases)
		got = false
		if v := b.Get([]byte(name)); v != nil {
			var l leaseRecord
			if err := json.Unmarshal(v, &l); err != nil {
				return fmt.Errorf("decode lease: %w", err)
			}
			if l.Owner != owner && now.Before(l.Until) {
				return nil
			}
		}
		v, err := json.Marshal(leaseRecord{Owner: owner, Until: now.Add(ttl)})
		if err != nil {
			return fmt.Errorf("encode lease: %w", err)
		}
		got = true
		return b.Put([]byte(name), v)
	})
	if err != nil {
		return false, wrap("acquire lease", err)
	}
	return got, nil
}

// ReleaseLease gives the named lease up if owner holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: release lease: %w", err)
	}
	return wrap("release lease", s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bLeases)
		v := b.Get([]byte(name))
		if v == nil {
			return nil
		}
		var l leaseRecord
		if err := json.Unmarshal(v, &l); err != nil {
			return fmt.Errorf("decode lease: %w", err)
		}
		if l.Owner != owner {
			return nil
		}
		return b.Delete([]byte(name))
	}))
}
