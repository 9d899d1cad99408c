package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	bbolt "go.etcd.io/bbolt"

	"github.com/otpbot/otpbot"
)

// Export calls fn for every record, from one consistent read transaction.
// A history entry stored under several keys is exported once.
func (s *Store) Export(ctx context.Context, fn func(otpbot.Record) error) error {
	now := s.now()
	return wrap("export", s.db.View(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		// The key first: Import applies it before any dedupe mark.
		key, err := readKey(tx)
		if err != nil {
			return err
		}
		if key != nil {
			if err := fn(otpbot.Record{InstallationSecret: key}); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bLinks).ForEach(func(_, v []byte) error {
			l, err := decodeLink(v)
			if err != nil {
				return err
			}
			return fn(otpbot.Record{Link: &l})
		}); err != nil {
			return err
		}
		if err := exportChats(tx, fn); err != nil {
			return err
		}
		if err := tx.Bucket(bInvites).ForEach(func(_, v []byte) error {
			var inv otpbot.Invite
			if err := json.Unmarshal(v, &inv); err != nil {
				return fmt.Errorf("decode invite: %w", err)
			}
			return fn(otpbot.Record{Invite: &inv})
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bIDs).ForEach(func(k, v []byte) error {
			if !idsValueLen(v) || uint64FromBytes(v) == 0 {
				return nil // a group's base only
			}
			seen := keyTime(uint64FromBytes(v))
			if now.Sub(seen) >= s.opts.DedupeWindow {
				return nil // outside the window: not a mark any more
			}
			return fn(otpbot.Record{Dedupe: &otpbot.DedupeMark{ID: string(k), Seen: seen}})
		}); err != nil {
			return err
		}
		if err := s.exportHistory(ctx, tx, fn); err != nil {
			return err
		}
		if err := forEachMessage(tx, func(_ []byte, m otpbot.Message) error {
			return fn(otpbot.Record{Message: &m})
		}); err != nil {
			return err
		}
		return forEachTask(tx, func(_ taskLoc, r taskRecord) error {
			// Leases are not exported: whoever imports owns no worker yet.
			return fn(otpbot.Record{Task: &r.Task})
		})
	}))
}

// importChunk is how many records one Import transaction writes, so a big
// import does not hold one huge transaction in memory.
const importChunk = 5000

// Import writes records, keeping their ids and times. History entries go
// under each of their event's keys. An installation secret is applied first,
// in a transaction of its own, as otpbot.Porter describes; when it
// conflicts nothing is written.
func (s *Store) Import(ctx context.Context, recs []otpbot.Record) error {
	if key, err := otpbot.ImportedSecret(recs); err != nil {
		return fmt.Errorf("store: import: %w", err)
	} else if key != nil {
		if err := s.db.Update(func(tx *bbolt.Tx) error { return s.importSecret(tx, key) }); err != nil {
			return wrap("import", err)
		}
	}
	for start := 0; start < len(recs); start += importChunk {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("store: import: %w", err)
		}
		chunk := recs[start:min(start+importChunk, len(recs))]
		if err := s.db.Update(func(tx *bbolt.Tx) error {
			for _, r := range chunk {
				if err := s.importRecord(tx, r); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return wrap("import", err)
		}
	}
	s.notify()
	return nil
}

// importRecord writes one record.
func (s *Store) importRecord(tx *bbolt.Tx, r otpbot.Record) error {
	switch {
	case r.Link != nil:
		return putLink(tx, *r.Link)
	case r.Invite != nil:
		return putInvite(tx, *r.Invite)
	case r.Dedupe != nil:
		return putDedupe(tx, r.Dedupe.ID, r.Dedupe.Seen)
	case r.History != nil:
		h := *r.History
		h.Event = h.Event.Redacted()
		return s.addHistory(tx, h.Event.HistoryKeys(), h.Event.ReceivedAt, encodeHistory(h))
	case r.Message != nil:
		return putMessage(tx, *r.Message)
	case r.Task != nil:
		return putTask(tx, *r.Task)
	case r.Chat != nil:
		return putChatSettings(tx, *r.Chat)
	}
	return nil // an installation secret: applied before the chunks
}

// Backup writes a consistent copy of the whole store file to w while the
// store stays in use (a read transaction sees one committed state and does
// not block writers). The copy is a valid store file to Open.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("store: backup: %w", err)
	}
	var n int64
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(ctxWriter{ctx: ctx, w: w})
		return err
	})
	if err != nil {
		return n, wrap("backup", err)
	}
	return n, nil
}

// ctxWriter stops a long backup when its context ends.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
