package bot

// /invite and /start TOKEN: one-time links that link the chat opening them.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/templates"
)

func (c *Commands) invite(ctx context.Context, r *request) error {
	key, ok, err := c.keyArg(ctx, r, inviteUsage)
	if !ok {
		return err
	}
	username := c.username()
	if username == "" {
		return errors.New("invite: bot username unknown")
	}
	buf := make([]byte, inviteBytes)
	if _, err := rand.Read(buf); err != nil {
		return fmt.Errorf("invite: random token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(buf)
	inv := otpbot.Invite{Hash: inviteHash(token), Key: key, CreatedBy: r.user, ExpiresAt: c.now().Add(c.inviteTTL)}
	if err := c.store.CreateInvite(ctx, inv); err != nil {
		return fmt.Errorf("invite: %w", err)
	}
	c.log.Info("invite created", "key_type", key.Type, "key", otpbot.MaskedID(key.ID), "by", r.user, "expires", inv.ExpiresAt)
	return c.ok(ctx, r, "invite", templates.InviteView{
		Key: key, URL: "https://t.me/" + username + "?start=" + token, ExpiresAt: inv.ExpiresAt, Valid: c.inviteTTL,
	})
}

// inviteHash is how an invite token is stored: only its SHA-256, so that a
// copy of the store cannot be used to redeem invites.
func inviteHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// validToken accepts what Telegram allows in a start parameter.
func validToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func (c *Commands) redeem(ctx context.Context, r *request, token string) error {
	r.name = "start_invite"
	if !validToken(token) {
		c.count(r.name, "refused")
		return c.reply(ctx, r, "invite_invalid", nil)
	}
	inv, err := c.store.RedeemInvite(ctx, inviteHash(token), r.target, c.now())
	if errors.Is(err, otpbot.ErrNotFound) {
		c.count(r.name, "refused")
		return c.reply(ctx, r, "invite_invalid", nil)
	}
	if err != nil {
		return fmt.Errorf("redeem invite: %w", err)
	}
	c.log.Info("invite redeemed", "key_type", inv.Key.Type, "key", otpbot.MaskedID(inv.Key.ID), "target", r.target, "by", r.user)
	return c.ok(ctx, r, "invite_redeemed", templates.LinkView{Key: inv.Key, Target: r.target})
}
