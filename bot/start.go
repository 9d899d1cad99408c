package bot

// /start and /help: the greeting, and the commands a user may run.

import (
	"context"

	"github.com/otpbot/otpbot/templates"
)

func (c *Commands) start(ctx context.Context, r *request) error {
	if len(r.args) > 0 {
		return c.redeem(ctx, r, r.args[0])
	}
	links, err := c.chatLinks(ctx, r)
	if err != nil {
		return err
	}
	return c.ok(ctx, r, "start", templates.StartView{
		ChatID: r.target.ChatID, ThreadID: r.target.ThreadID, Name: r.msg.From.FirstName,
		Admin: r.admin, Linked: len(links) > 0, Group: !r.private,
	})
}

func (c *Commands) help(ctx context.Context, r *request) error {
	linked := false
	if !r.admin {
		links, err := c.chatLinks(ctx, r)
		if err != nil {
			return err
		}
		linked = len(links) > 0
	}
	return c.ok(ctx, r, "help", templates.HelpView{Admin: r.admin, Linked: linked, Settings: r.private || r.admin})
}
