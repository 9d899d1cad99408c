package telegram

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/internal/wait"
)

// How long the conversation keeps trying one call.
const (
	// ReplyMaxAge is how long a command reply is retried (through 429s,
	// 5xx answers and outages) before it is given up, with a log line.
	ReplyMaxAge = 2 * time.Minute
	// answerMaxAge bounds a callback answer's retries: Telegram forgets
	// a callback query after about 15 seconds.
	answerMaxAge = 10 * time.Second
)

// Paced is the conversation's side of the rate budget: every call of the
// commands, callbacks and approvals (replies, edits, deletions, callback
// answers) takes a slot from the same Budget as the deliverer's, at the
// priority of an update (after codes, ahead of countdown refreshes and ops
// reports), and is retried as Telegram asks: a 429 pauses its scope for
// retry_after and the call goes again; a 5xx, a timeout or a dropped
// connection is retried with a short backoff; until the call's context
// ends. A refusal (400, 403) is returned at once.
type Paced struct {
	next   Replier
	budget Budget
	log    *slog.Logger
}

var _ Replier = (*Paced)(nil)

// Replier is what the conversation calls on Telegram: the Client, or a
// Paced around it.
type Replier interface {
	Send(ctx context.Context, m OutMessage) (int, error)
	Edit(ctx context.Context, messageID int, m OutMessage) error
	Delete(ctx context.Context, target otpbot.Target, messageID int) error
	AnswerCallback(ctx context.Context, callbackID, text string, alert bool) error
}

// NewPaced wraps client; budget nil means unlimited (tests), though 429s
// are still obeyed.
func NewPaced(client Replier, budget Budget, logger *slog.Logger) *Paced {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Paced{next: client, budget: budget, log: logger}
}

// Send sends m; see Paced.
func (p *Paced) Send(ctx context.Context, m OutMessage) (int, error) {
	var id int
	err := p.do(ctx, m.Target, "sendMessage", func(ctx context.Context) (err error) {
		id, err = p.next.Send(ctx, m)
		return err
	})
	return id, err
}

// Edit edits a message; see Paced.
func (p *Paced) Edit(ctx context.Context, messageID int, m OutMessage) error {
	return p.do(ctx, m.Target, "editMessageText", func(ctx context.Context) error {
		return p.next.Edit(ctx, messageID, m)
	})
}

// Delete deletes a message; see Paced.
func (p *Paced) Delete(ctx context.Context, target otpbot.Target, messageID int) error {
	return p.do(ctx, target, "deleteMessage", func(ctx context.Context) error {
		return p.next.Delete(ctx, target, messageID)
	})
}

// AnswerCallback answers a button press. It counts against the bot's
// global budget only (it puts nothing in a chat) and is retried for a few
// seconds at most: Telegram forgets the query soon after.
func (p *Paced) AnswerCallback(ctx context.Context, callbackID, text string, alert bool) error {
	ctx, cancel := context.WithTimeout(ctx, answerMaxAge)
	defer cancel()
	return p.do(ctx, otpbot.Target{}, "answerCallbackQuery", func(ctx context.Context) error {
		return p.next.AnswerCallback(ctx, callbackID, text, alert)
	})
}

// do runs call under the budget until it succeeds, fails for good, or ctx
// ends.
func (p *Paced) do(ctx context.Context, target otpbot.Target, method string, call func(context.Context) error) error {
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		if p.budget != nil {
			if pause := p.budget.Take(ctx, target, Reply).For; pause > 0 {
				if !wait.Sleep(ctx, pause) {
					return fmt.Errorf("telegram %s: no slot in the rate budget: %w", method, ctx.Err())
				}
				continue
			}
		}
		err := call(ctx)
		var pause time.Duration
		switch ClassOf(err) {
		case 0, ClassNotModified:
			return err
		case ClassRateLimited:
			pause = RetryAfterOf(err)
			if p.budget != nil {
				pause = p.budget.Pause(ctx, target, pause)
			}
		case ClassRetryable:
			if ctx.Err() != nil || errors.Is(err, context.Canceled) {
				return err
			}
			pause = wait.Jitter(backoff)
			backoff = min(backoff*2, 5*time.Second)
		default:
			return err
		}
		p.log.Warn("telegram call failed, retrying", "method", method, "chat", target.ChatID, "attempt", attempt, "retry_in", pause, "err", err)
		if !wait.Sleep(ctx, pause) {
			return err
		}
	}
}
