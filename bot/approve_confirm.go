package bot

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"time"

	"github.com/otpbot/otpbot"
)

// The confirming tap of an approval answer is bound to the first tap.
//
// A first tap on Approve or Decline starts a confirmation: a random nonce,
// held as a lease in the shared store under a name that also carries the
// message (so the chat), the user who tapped and the direction, for
// ApprovalOptions.ConfirmTTL. The confirm and cancel buttons shown to
// that user carry the nonce. A confirming tap is accepted only when the
// lease of its own user, direction and nonce is held: another user's tap
// on the same button, a forged "decline:confirm" with no first step, an
// approval nonce presented as a decline, an expired or already used nonce
// all name a lease nobody holds, and call nothing. A confirmation is used
// once: the confirming tap (under the decision lease, see decide) or the
// cancel ends it.

// DefaultConfirmTTL is how long a first tap's confirmation can be
// confirmed when ApprovalOptions.ConfirmTTL is zero.
const DefaultConfirmTTL = 2 * time.Minute

const (
	// confirmLeasePrefix starts the lease name of a confirmation.
	confirmLeasePrefix = "auth-confirm:"
	// confirmHolder owns every confirmation lease: the lease's name is
	// what binds it, the owner only tells it from a probe.
	confirmHolder = "first-tap"
	// probeTTL bounds a probe that took a lease nobody held, should
	// giving it back fail.
	probeTTL = time.Second
)

// DecisionEvent is the name of the history entry that records who answered
// an approval request, and how: Event.Status is the answer ("approved" or
// "declined"), Event.Remark who gave it ("@ann (id 42)").
const DecisionEvent = "AUTH_3DS_DECISION"

// confirmation is one first tap waiting for its confirming tap.
type confirmation struct {
	message string // otpbot.Message.ID of the tapped message
	user    int64
	approve bool
	nonce   string
}

// lease names the confirmation's lease in the store.
func (f confirmation) lease() string {
	return confirmLeasePrefix + f.message + "|" + strconv.FormatInt(f.user, 10) + "|" + answerWord(f.approve) + "|" + f.nonce
}

// startConfirmation holds a new confirmation of the user's first tap on
// m, for the confirmation's lifetime.
func (a *Approvals) startConfirmation(ctx context.Context, m otpbot.Message, user int64, approve bool) (confirmation, error) {
	f := confirmation{message: m.ID, user: user, approve: approve, nonce: rand.Text()}
	held, err := a.store.AcquireLease(ctx, f.lease(), confirmHolder, a.confirmTTL)
	if err != nil {
		return f, fmt.Errorf("confirmation lease: %w", err)
	}
	if !held {
		// A fresh random nonce names a lease nobody can hold.
		return f, fmt.Errorf("confirmation lease %s: held already", f.nonce)
	}
	return f, nil
}

// pending reports whether f was started by a first tap and neither used
// nor expired: whether its lease is held. The store's coordinator cannot
// read a lease, so a probe tries to take it under another owner: failing
// proves the first tap holds it; taking it proves nobody did, and the
// probe gives it straight back.
func (a *Approvals) pending(ctx context.Context, f confirmation) (bool, error) {
	if f.nonce == "" {
		return false, nil
	}
	name, probe := f.lease(), "probe-"+rand.Text()
	took, err := a.store.AcquireLease(ctx, name, probe, probeTTL)
	if err != nil {
		return false, fmt.Errorf("confirmation lease: %w", err)
	}
	if !took {
		return true, nil
	}
	if err := a.store.ReleaseLease(ctx, name, probe); err != nil {
		a.log.Warn("confirmation probe not released", "err", err)
	}
	return false, nil
}

// endConfirmation uses f up: its buttons no longer work. It runs to its
// own bound even when the tap's handling is cut short.
func (a *Approvals) endConfirmation(ctx context.Context, f confirmation) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := a.store.ReleaseLease(rctx, f.lease(), confirmHolder); err != nil {
		// It still runs out within the confirmation's lifetime.
		a.log.Warn("approval confirmation not ended", "err", err)
	}
}

// recordDecision files the answer HyperCard accepted in the history of the
// request's card: who answered, how and when, beside the request itself in
// /history. An approval request carries no code; the entry is redacted all
// the same.
func (a *Approvals) recordDecision(ctx context.Context, req otpbot.Event, q *callbackRequest, f confirmation, result int) error {
	now := a.now()
	word := "approved"
	if !f.approve {
		word = "declined"
	}
	ev := otpbot.Event{
		// One entry per confirmation: a repeat of this write is a repeat.
		ID: "otpbot:decision:" + req.Group + ":" + f.nonce, Group: "otpbot:decision:" + req.Group,
		Provider: req.Provider, Name: DecisionEvent, Kind: otpbot.KindInfo,
		CardID: req.CardID, CustomerNo: req.CustomerNo, CardLast4: req.CardLast4,
		Amount: req.Amount, Currency: req.Currency, Merchant: req.Merchant, Country: req.Country,
		AuthID: req.AuthID, AuthResult: result,
		Status:     word,
		Remark:     fmt.Sprintf("%s (id %d)", userLabel(q), q.user),
		OccurredAt: now, ReceivedAt: now,
	}
	if _, err := a.store.Ingest(ctx, ev.Redacted()); err != nil {
		return fmt.Errorf("record decision: %w", err)
	}
	return nil
}
