package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/otpbot/otpbot"
)

// Invites are hashes "iv:HASH" ("j" JSON, "x" expiry µs, "k" key, "kj" key
// JSON) expiring in Redis well after their logical expiry, indexed by the
// sorted set "iv" for Export.

// CreateInvite stores an invite under its hash. A zero ExpiresAt means
// InviteTTL from now.
func (s *Store) CreateInvite(ctx context.Context, inv otpbot.Invite) error {
	if !inv.Key.Linkable() {
		return fmt.Errorf("store: create invite for %s: %w", inv.Key.Type, otpbot.ErrNotLinkable)
	}
	now := s.now()
	if inv.ExpiresAt.IsZero() {
		inv.ExpiresAt = now.Add(s.opts.InviteTTL)
	}
	j, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("encode invite: %w", err)
	}
	kj, err := json.Marshal(inv.Key)
	if err != nil {
		return fmt.Errorf("encode invite: %w", err)
	}
	args := createInviteArgs{B: s.k.base, Hash: inv.Hash, InviteJSON: string(j), Expiry: us(inv.ExpiresAt),
		Key: inv.Key.String(), KeyJSON: string(kj), Gc: ms(gcTTL(inv.ExpiresAt.Sub(now)))}
	err = createInviteScript.Run(ctx, s.client, []string{s.k.invite(inv.Hash)}, args.argv()...).Err()
	return wrap("create invite", err)
}

// RedeemInvite consumes the invite and links target to its key in one
// script: of several chats racing for it exactly one wins.
func (s *Store) RedeemInvite(ctx context.Context, hash string, target otpbot.Target, now time.Time) (otpbot.Invite, error) {
	rest, err := linkFragment(now)
	if err != nil {
		return otpbot.Invite{}, fmt.Errorf("encode link: %w", err)
	}
	args := redeemInviteArgs{B: s.k.base, Hash: hash, Now: us(now), Target: target.String(),
		Chat: strconv.FormatInt(target.ChatID, 10), LinkRest: rest}
	v, err := redeemInviteScript.Run(ctx, s.client, []string{s.k.invite(hash)}, args.argv()...).Text()
	if err != nil {
		if isRedisNil(err) {
			return otpbot.Invite{}, fmt.Errorf("redeem invite: %w", otpbot.ErrNotFound)
		}
		return otpbot.Invite{}, wrap("redeem invite", err)
	}
	var inv otpbot.Invite
	if err := json.Unmarshal([]byte(v), &inv); err != nil {
		return otpbot.Invite{}, fmt.Errorf("decode invite: %w", err)
	}
	return inv, nil
}

// Once returns true the first time key is seen within ttl (store clock).
// The mark also expires in Redis, with slack, to collect it.
func (s *Store) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	now := s.now()
	args := onceArgs{Now: us(now), Expiry: us(now.Add(ttl)), Gc: ms(gcTTL(ttl))}
	r, err := onceScript.Run(ctx, s.client, []string{s.k.once(key)}, args.argv()...).Int()
	if err != nil {
		return false, wrap("once", err)
	}
	return r == 1, nil
}

// AcquireLease takes or renews the named lease for owner until ttl from
// now (store clock); false while another owner's lease runs.
func (s *Store) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	now := s.now()
	args := acquireLeaseArgs{Owner: owner, Now: us(now), Expiry: us(now.Add(ttl)), Gc: ms(gcTTL(ttl))}
	r, err := acquireLeaseScript.Run(ctx, s.client, []string{s.k.lease(name)}, args.argv()...).Int()
	if err != nil {
		return false, wrap("acquire lease", err)
	}
	return r == 1, nil
}

// ReleaseLease gives the lease up if owner holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) error {
	return wrap("release lease", releaseLeaseScript.Run(ctx, s.client, []string{s.k.lease(name)},
		(&releaseLeaseArgs{Owner: owner}).argv()...).Err())
}
