package bot

// /codes: the codes still valid in this chat, deleted at their expiry.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/templates"
)

// codes lists the chat's live codes and approval requests, each code shown
// like in its message, with the time left. A code must never stay on
// screen past its expiry, so the reply is deleted when the first code it
// lists expires: a TaskDelete per message of the reply, due then, that the
// Deliverer carries out (and that survives a restart).
func (c *Commands) codes(ctx context.Context, r *request) error {
	msgs, err := c.store.MessagesForChat(ctx, r.target.ChatID)
	if err != nil {
		return fmt.Errorf("codes: %w", err)
	}
	now := c.now()
	var lines []templates.CodeLine
	var first time.Time // the earliest expiry listed
	for _, m := range msgs {
		// A request its push decided asks nothing more (the store marks
		// it decided; one stored before that rule is skipped all the same).
		if m.State != otpbot.StateLive || !m.Event.Kind.Pushed() || m.Event.Expired(now) || m.Event.Decided() {
			continue
		}
		line := templates.CodeLine{Event: m.Event.Redacted(), Code: m.Event.Code, Link: m.Event.Link,
			Card: r.loc.CardLabel(m.Event, m.CardName)}
		if exp := m.Event.ExpiresAt; !exp.IsZero() {
			line.Left = exp.Sub(now)
			line.LeftText = templates.Remaining(line.Left)
			if first.IsZero() || exp.Before(first) {
				first = exp
			}
		}
		lines = append(lines, line)
	}
	// Soonest to expire first: that is the one the cardholder is after.
	sort.SliceStable(lines, func(i, j int) bool {
		a, b := lines[i].Event.ExpiresAt, lines[j].Event.ExpiresAt
		if a.IsZero() != b.IsZero() {
			return b.IsZero()
		}
		return a.Before(b)
	})
	deleteIn := ""
	if !first.IsZero() {
		deleteIn = templates.Remaining(first.Sub(now))
	}
	pages, err := r.loc.RenderPages("codes", len(lines), func(from, to, part, parts int) any {
		return templates.CodesView{Codes: lines[from:to], Part: part, Parts: parts, DeleteIn: deleteIn}
	})
	if err != nil {
		return err
	}
	c.count(r.name, "ok")
	target, replyTo, protect := r.target, r.msg.MessageID, len(lines) > 0
	c.outq.push(target.ChatID, func(ctx context.Context) {
		if err := c.sendCodes(ctx, target, replyTo, protect, pages, first); err != nil {
			c.log.Error("command reply not sent", "command", "codes", "chat", target.ChatID, "err", err)
		}
	})
	return nil
}

// sendCodes sends the pages of a /codes reply and schedules their deletion
// at first, the earliest expiry they list (none when zero).
func (c *Commands) sendCodes(ctx context.Context, target otpbot.Target, replyTo int, protect bool, pages []string, first time.Time) error {
	var tasks []otpbot.Task
	for _, p := range pages {
		id, err := c.client.Send(ctx, telegram.OutMessage{Target: target, Text: p, ReplyTo: replyTo, Protect: protect})
		if err != nil {
			err = fmt.Errorf("reply: %w", err)
			return errors.Join(err, c.dropCodes(ctx, target, tasks))
		}
		if !first.IsZero() {
			tasks = append(tasks, otpbot.Task{
				ID:   "delete:" + target.String() + ":" + strconv.Itoa(id),
				Kind: otpbot.TaskDelete, Priority: otpbot.PriorityUpdate,
				Target: target, TelegramID: id, Due: first, Created: first,
			})
		}
	}
	if len(tasks) == 0 {
		return nil
	}
	if err := c.store.Enqueue(ctx, tasks...); err != nil {
		// Nothing would take the codes off the screen at expiry: take
		// them off now.
		return errors.Join(fmt.Errorf("codes: schedule the reply's deletion: %w", err), c.dropCodes(ctx, target, tasks))
	}
	return nil
}

// dropCodes deletes the /codes reply messages of tasks at once.
func (c *Commands) dropCodes(ctx context.Context, target otpbot.Target, tasks []otpbot.Task) error {
	var errs []error
	for _, t := range tasks {
		if err := c.client.Delete(ctx, target, t.TelegramID); err != nil {
			errs = append(errs, fmt.Errorf("delete the /codes reply: %w", err))
		}
	}
	return errors.Join(errs...)
}
