package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/otpbot/otpbot"
)

// Ingest records ev in a transaction shared with the pushes that arrive
// meanwhile (see groupCommit) and returns once it is on disk.
func (s *Store) Ingest(ctx context.Context, ev otpbot.Event) (otpbot.IngestResult, error) {
	if err := ctx.Err(); err != nil {
		return otpbot.IngestResult{}, fmt.Errorf("store: ingest: %w", err)
	}
	// Encoded once, outside the transaction: the shared commit holds the
	// write lock, so the less each push does inside it the better.
	redacted := ev.Redacted()
	var res otpbot.IngestResult
	err := s.commits.Update(func(tx *bbolt.Tx) error {
		// This may run more than once: start from scratch each time.
		res = otpbot.IngestResult{}
		return s.ingestTx(tx, ev, redacted, &res)
	})
	if err != nil {
		return otpbot.IngestResult{}, wrap("ingest", err)
	}
	if len(res.Targets) > 0 {
		s.notify()
	}
	return res, nil
}

// ingestTx is the body of Ingest.
func (s *Store) ingestTx(tx *bbolt.Tx, ev, redacted otpbot.Event, res *otpbot.IngestResult) error {
	now := s.now()
	dup, err := s.seen(tx, ev.ID, now)
	if err != nil || dup {
		res.Duplicate = dup
		return err
	}
	if err := putDedupe(tx, ev.ID, now); err != nil {
		return err
	}

	var targets []routed
	var route bool
	res.Outcome, route = otpbot.IngestOutcome(ev, ev.ReceivedAt)
	if route {
		if targets, err = routeTargets(tx, ev.Keys()); err != nil {
			return err
		}
		if len(targets) > 0 {
			res.Outcome = otpbot.OutcomeQueued
		}
	}

	entry := encodeHistory(otpbot.HistoryEntry{Event: redacted, Outcome: res.Outcome})
	if err := s.addHistory(tx, ev.HistoryKeys(), ev.ReceivedAt, entry); err != nil {
		return err
	}

	for _, r := range targets {
		target := r.target
		id := otpbot.MessageKey(ev.Group, target)
		m, ok, err := getMessage(tx, id)
		if err != nil {
			return err
		}
		var t otpbot.Task
		if ok {
			// The group's message is already in this chat: show the new
			// event in place (a changed AUTH_3DS result, which may decide
			// the request).
			m.Event, m.State = ev, otpbot.NextState(m.State, ev)
			m.UpdatedAt = now
			t = otpbot.Task{ID: otpbot.TaskID(id, otpbot.TaskUpdate), Kind: otpbot.TaskUpdate,
				Priority: otpbot.PriorityUpdate}
		} else {
			m = otpbot.Message{ID: id, Group: ev.Group, Target: target, Event: ev,
				State: otpbot.NextState("", ev), CardName: r.cardName, UpdatedAt: now}
			t = otpbot.Task{ID: otpbot.TaskID(id, otpbot.TaskSend), Kind: otpbot.TaskSend,
				Priority: otpbot.PriorityCode}
		}
		if m.State.Final() {
			m.Event = redacted // a final message never holds a code again
		}
		t.MessageID, t.Target, t.Due, t.Created = id, target, ev.ReceivedAt, ev.ReceivedAt
		if err := putMessage(tx, m); err != nil {
			return err
		}
		if err := putTask(tx, t); err != nil {
			return err
		}
		res.Targets = append(res.Targets, target)
	}
	return nil
}

// routed is a target of a pushed event, with the name its link gives the
// event's card (Link.Name; "" for none, or when the target is linked to
// the customer only).
type routed struct {
	target   otpbot.Target
	cardName string
}

// routeTargets returns the targets of the unbroken links of every key, each
// once, in key order (card first). A chat linked to both a card and its
// customer gets one message; two topics of one chat are two targets; and a
// target still receives when its link under one key broke but its link
// under another did not (it was linked again since).
func routeTargets(tx *bbolt.Tx, keys []otpbot.Key) ([]routed, error) {
	var out []routed
	seen := map[otpbot.Target]bool{}
	names := map[otpbot.Target]string{}
	for _, key := range keys {
		links, err := linksForKey(tx, key)
		if err != nil {
			return nil, err
		}
		for _, l := range links {
			if key.Type == otpbot.KeyCard && l.Name != "" {
				names[l.Target] = l.Name // a broken card link still names the card
			}
			if !l.Broken && !seen[l.Target] {
				seen[l.Target] = true
				out = append(out, routed{target: l.Target})
			}
		}
	}
	for i := range out {
		out[i].cardName = names[out[i].target]
	}
	return out, nil
}

// seen reports whether id was marked within the dedupe window.
func (s *Store) seen(tx *bbolt.Tx, id string, now time.Time) (bool, error) {
	e := getID(tx, id)
	if e.seen == 0 {
		return false, nil
	}
	return now.Sub(seenAt(e)) < s.opts.DedupeWindow, nil
}

// putDedupe marks id as seen at seen, replacing an older mark.
func putDedupe(tx *bbolt.Tx, id string, seen time.Time) error {
	byTime := tx.Bucket(bDedupeByTime)
	e := getID(tx, id)
	if e.seen != 0 {
		if err := byTime.Delete(append(appendUint64(nil, e.seen), id...)); err != nil {
			return fmt.Errorf("dedupe index: %w", err)
		}
	}
	e.seen = timeKey(seen)
	if err := putID(tx, id, e); err != nil {
		return fmt.Errorf("dedupe mark: %w", err)
	}
	if err := byTime.Put(append(appendUint64(nil, e.seen), id...), nil); err != nil {
		return fmt.Errorf("dedupe index: %w", err)
	}
	return nil
}

// uint64FromBytes decodes 8 big-endian bytes.
func uint64FromBytes(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
