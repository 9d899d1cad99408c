package bot

// /link, /unlink, /links and /replies: which chats receive which cards and
// customers.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/templates"
)

const (
	linkUsage   = "/link card ID [NAME] | /link customer NO"
	unlinkUsage = "/unlink card ID | /unlink customer NO"
	inviteUsage = "/invite card ID | /invite customer NO"
	historyHelp = "/history [ID] [N]"
	repliesHelp = "/replies on | /replies off"
)

func (c *Commands) link(ctx context.Context, r *request) error {
	key, name, err := parseLink(r.args)
	switch {
	case errors.Is(err, errCardName):
		// A name with a card number in it is refused like a card number
		// (and not repeated); any other bad name gets the usage.
		if digitsIn(strings.Join(r.args[2:], "")) > 8 {
			return c.cardNumber(ctx, r, "")
		}
		return c.usage(ctx, r, linkUsage)
	case errors.Is(err, errCardNumber):
		return c.cardNumber(ctx, r, "/"+r.name+" "+string(key.Type)+" ID "+confirmWord)
	case err != nil:
		return c.usage(ctx, r, linkUsage)
	}
	l := otpbot.Link{Key: key, Target: r.target, CreatedAt: c.now(), CreatedBy: r.user, Name: name}
	// A new link starts with replies off; renewing one (after it broke,
	// say) keeps the chat's choice, and its name unless a new one is given.
	links, err := c.chatLinks(ctx, r)
	if err != nil {
		return err
	}
	for _, old := range links {
		if old.Key == key && old.Target == r.target {
			l.Replies = old.Replies
			if l.Name == "" {
				l.Name = old.Name
			}
		}
	}
	if err := c.store.Link(ctx, l); err != nil {
		return fmt.Errorf("link: %w", err)
	}
	c.log.Info("linked", "key_type", key.Type, "key", otpbot.MaskedID(key.ID), "target", r.target, "by", r.user,
		"named", l.Name != "")
	return c.ok(ctx, r, "link_ok", templates.LinkView{Key: key, Target: r.target, Name: l.Name})
}

// digitsIn counts the decimal digits in s.
func digitsIn(s string) int {
	n := 0
	for _, r := range s {
		if r >= '0' && r <= '9' {
			n++
		}
	}
	return n
}

func (c *Commands) unlink(ctx context.Context, r *request) error {
	key, err := parseKey(r.args)
	if errors.Is(err, errCardNumber) {
		// A link the chat has can always be removed: it was made with
		// confirmWord.
		linked, lerr := c.hasLink(ctx, r, key)
		if lerr != nil {
			return lerr
		}
		if !linked {
			return c.cardNumber(ctx, r, "")
		}
		err = nil
	}
	if err != nil {
		return c.usage(ctx, r, unlinkUsage)
	}
	removed, err := c.store.Unlink(ctx, key, r.target)
	if err != nil {
		return fmt.Errorf("unlink: %w", err)
	}
	view := templates.LinkView{Key: key, Target: r.target}
	if !removed {
		return c.ok(ctx, r, "unlink_missing", view)
	}
	c.log.Info("unlinked", "key_type", key.Type, "key", otpbot.MaskedID(key.ID), "target", r.target, "by", r.user)
	return c.ok(ctx, r, "unlink_ok", view)
}

// hasLink reports whether key is linked to the request's chat and topic.
func (c *Commands) hasLink(ctx context.Context, r *request, key otpbot.Key) (bool, error) {
	links, err := c.chatLinks(ctx, r)
	if err != nil {
		return false, err
	}
	for _, l := range links {
		if l.Key == key && l.Target == r.target {
			return true, nil
		}
	}
	return false, nil
}

func (c *Commands) links(ctx context.Context, r *request) error {
	links, err := c.chatLinks(ctx, r)
	if err != nil {
		return err
	}
	links = slices.Clone(links)
	sort.Slice(links, func(i, j int) bool {
		if links[i].Target.ThreadID != links[j].Target.ThreadID {
			return links[i].Target.ThreadID < links[j].Target.ThreadID
		}
		return links[i].Key.String() < links[j].Key.String()
	})
	return c.ok(ctx, r, "links", templates.LinksView{ChatID: r.target.ChatID, Links: links})
}

// replies switches, for every link of this chat and topic, whether the
// later events of a code's transaction (the payment after a 3-D Secure
// code) are added to the code message as replies (see FollowUps). Like
// /link it renews the links it touches: a command from the chat shows the
// bot can reach it.
func (c *Commands) replies(ctx context.Context, r *request) error {
	if len(r.args) != 1 {
		return c.usage(ctx, r, repliesHelp)
	}
	var on bool
	switch strings.ToLower(r.args[0]) {
	case "on":
		on = true
	case "off":
	default:
		return c.usage(ctx, r, repliesHelp)
	}
	links, err := c.chatLinks(ctx, r)
	if err != nil {
		return err
	}
	n := 0
	for _, l := range links {
		if l.Target != r.target {
			continue // another topic of the chat decides for itself
		}
		l.Replies = on
		if err := c.store.Link(ctx, l); err != nil {
			return fmt.Errorf("replies: %w", err)
		}
		n++
	}
	if n > 0 {
		c.log.Info("replies switched", "on", on, "target", r.target, "links", n, "by", r.user)
	}
	return c.ok(ctx, r, "replies", templates.RepliesView{On: on, Target: r.target, Links: n})
}
