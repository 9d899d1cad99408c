package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/otpbot/otpbot"
)

// History lives in one flat bucket, hist: key prefix (uvarint length +
// "card:C1") + ^received time + sequence → entry, newest first within a
// key. A bucket per key cost every push a page of its own per key (each
// key's leaf, and the parent's leaf holding the key's bucket header); in
// one bucket the entries of many keys share leaves, and those of the
// events key, which every push writes, are adjacent.
//
// The cap (HistoryPerKey) is applied when reading, and Prune deletes what
// is past it: keeping it exact at every push took a per-key count (one
// more page per key and push) and a delete at the far end of the key's
// entries (one more).

// historyKey orders entries newest first; seq keeps entries of the same
// instant apart and, being shared by all keys of one event, lets Export tell
// that two keys hold the same entry.
func historyKey(prefix []byte, received time.Time, seq uint64) []byte {
	k := make([]byte, 0, len(prefix)+16)
	return appendUint64(appendUint64(append(k, prefix...), ^timeKey(received)), seq)
}

// historyPrefix is the prefix of every entry of key.
func historyPrefix(key string) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(key))), key...)
}

// splitHistoryKey returns the prefix, receipt time and sequence of an
// entry's key; ok is false for a malformed key.
func splitHistoryKey(k []byte) (prefix []byte, received time.Time, seq uint64, ok bool) {
	n, w := binary.Uvarint(k)
	if w <= 0 || uint64(len(k)-w) != n+16 {
		return nil, time.Time{}, 0, false
	}
	p := k[:w+int(n)]
	rest := k[len(p):]
	return p, keyTime(^uint64FromBytes(rest[:8])), uint64FromBytes(rest[8:]), true
}

// addHistory stores the encoded entry under each key.
func (s *Store) addHistory(tx *bbolt.Tx, keys []otpbot.Key, received time.Time, entry []byte) error {
	if len(keys) == 0 {
		return nil
	}
	b := tx.Bucket(bHist)
	seq, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("history sequence: %w", err)
	}
	for _, key := range keys {
		if err := b.Put(historyKey(historyPrefix(key.String()), received, seq), entry); err != nil {
			return fmt.Errorf("history entry: %w", err)
		}
	}
	return nil
}

// History returns up to limit entries of key within the retention and the
// cap, newest first.
func (s *Store) History(ctx context.Context, key otpbot.Key, limit int) ([]otpbot.HistoryEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: history: %w", err)
	}
	if c := s.opts.HistoryPerKey; c > 0 && limit > c {
		limit = c
	}
	oldest := s.retentionStart(s.now())
	var out []otpbot.HistoryEntry
	err := s.db.View(func(tx *bbolt.Tx) error {
		prefix := historyPrefix(key.String())
		c := tx.Bucket(bHist).Cursor()
		for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix) && len(out) < limit; k, v = c.Next() {
			p, received, _, ok := splitHistoryKey(k)
			if !ok || len(p) != len(prefix) {
				continue
			}
			if received.Before(oldest) {
				break // everything after is older still
			}
			h, err := decodeHistory(v)
			if err != nil {
				return err
			}
			out = append(out, h)
		}
		return nil
	})
	return out, wrap("history", err)
}

// retentionStart is the receipt time before which history is dropped; the
// zero time when there is no retention limit.
func (s *Store) retentionStart(now time.Time) time.Time {
	if s.opts.HistoryRetention <= 0 {
		return time.Time{}
	}
	return now.Add(-s.opts.HistoryRetention)
}

// walkHistory calls fn for every entry in key order, with its position
// within its key (0 for the newest).
func walkHistory(tx *bbolt.Tx, fn func(k, v []byte, pos int, received time.Time, seq uint64) error) error {
	var (
		cur []byte
		pos int
	)
	c := tx.Bucket(bHist).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		p, received, seq, ok := splitHistoryKey(k)
		if !ok {
			continue
		}
		if string(p) != string(cur) {
			cur, pos = clone(p), 0
		}
		if err := fn(k, v, pos, received, seq); err != nil {
			return err
		}
		pos++
	}
	return nil
}

// deadHistory lists the keys of the entries past the retention or the cap
// at now. It reads only: an entry once dead stays dead (entries are only
// added in front of a key's, and time only moves on), so Prune collects
// them in a read transaction and holds the write lock only to delete.
func (s *Store) deadHistory(now time.Time) ([][]byte, error) {
	oldest := s.retentionStart(now)
	limit := s.opts.HistoryPerKey
	var dead [][]byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		return walkHistory(tx, func(k, _ []byte, pos int, received time.Time, _ uint64) error {
			if received.Before(oldest) || (limit > 0 && pos >= limit) {
				dead = append(dead, clone(k))
			}
			return nil
		})
	})
	return dead, err
}

// pruneHistory deletes the entries deadHistory found.
func pruneHistory(tx *bbolt.Tx, dead [][]byte) (int, error) {
	b := tx.Bucket(bHist)
	n := 0
	for _, k := range dead {
		if b.Get(k) == nil {
			continue
		}
		if err := b.Delete(k); err != nil {
			return 0, fmt.Errorf("prune history: %w", err)
		}
		n++
	}
	return n, nil
}

// exportHistory emits each entry within its key's cap once: an entry under
// several keys shares its sequence number.
func (s *Store) exportHistory(ctx context.Context, tx *bbolt.Tx, fn func(otpbot.Record) error) error {
	done := map[uint64]bool{}
	limit := s.opts.HistoryPerKey
	return walkHistory(tx, func(_, v []byte, pos int, _ time.Time, seq uint64) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if done[seq] || (limit > 0 && pos >= limit) {
			return nil
		}
		done[seq] = true
		h, err := decodeHistory(v)
		if err != nil {
			return err
		}
		return fn(otpbot.Record{History: &h})
	})
}

// migrateHistory moves history from the layout of earlier versions (a
// bucket per key under "history", with a count per key in
// "history_count") into hist, keeping each entry's time and sequence.
func migrateHistory(tx *bbolt.Tx) error {
	old := tx.Bucket(bHistoryV1)
	if old == nil {
		return nil
	}
	dst := tx.Bucket(bHist)
	if err := old.ForEachBucket(func(name []byte) error {
		prefix := historyPrefix(string(name))
		return old.Bucket(name).ForEach(func(k, v []byte) error {
			if len(k) != 16 {
				return nil
			}
			return dst.Put(append(clone(prefix), k...), clone(v))
		})
	}); err != nil {
		return fmt.Errorf("migrate history: %w", err)
	}
	if old.Sequence() > dst.Sequence() {
		if err := dst.SetSequence(old.Sequence()); err != nil {
			return fmt.Errorf("migrate history: %w", err)
		}
	}
	if err := tx.DeleteBucket(bHistoryV1); err != nil {
		return fmt.Errorf("migrate history: %w", err)
	}
	if tx.Bucket(bHistoryCountV1) != nil {
		if err := tx.DeleteBucket(bHistoryCountV1); err != nil {
			return fmt.Errorf("migrate history: %w", err)
		}
	}
	return nil
}
