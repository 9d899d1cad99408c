package bolt

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/otpbot/otpbot"
)

// secretName is the installation secret's entry in the meta bucket (the
// name existing files hold it under).
var secretName = []byte("installation_key")

// errBadSecret is a stored key of the wrong size: the file is readable, so
// it is not ErrUnavailable (a caller retrying would wait forever), but the
// key cannot be used.
var errBadSecret = errors.New("stored installation secret is damaged")

// InstallationSecret returns the store's installation secret, creating it in the
// file at the first call. bbolt serialises writers, so the read-or-create
// in one Update is atomic; the key lives in the file and therefore also in
// every backup of it.
func (s *Store) InstallationSecret(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: installation secret: %w", err)
	}
	var key []byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		key, err = readKey(tx)
		return err
	})
	if err == nil && key == nil {
		err = s.db.Update(func(tx *bbolt.Tx) error {
			var err error
			if key, err = readKey(tx); err != nil || key != nil {
				return err
			}
			fresh := make([]byte, otpbot.InstallationSecretSize)
			if _, err := rand.Read(fresh); err != nil {
				return fmt.Errorf("generate: %w", err)
			}
			if err := putKey(tx, fresh); err != nil {
				return err
			}
			key = fresh
			return nil
		})
	}
	if err != nil {
		return nil, wrap("installation secret", err)
	}
	return key, nil
}

// readKey returns the stored key (a copy), or nil when there is none yet.
// A key of the wrong size is an error rather than a reason to make a new
// one: a new key would change the id of every repeated push.
func readKey(tx *bbolt.Tx) ([]byte, error) {
	b := tx.Bucket(bMeta)
	if b == nil {
		return nil, nil
	}
	v := b.Get(secretName)
	if v == nil {
		return nil, nil
	}
	if len(v) != otpbot.InstallationSecretSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", errBadSecret, len(v), otpbot.InstallationSecretSize)
	}
	return clone(v), nil
}

func putKey(tx *bbolt.Tx, key []byte) error {
	b, err := tx.CreateBucketIfNotExists(bMeta)
	if err != nil {
		return fmt.Errorf("meta bucket: %w", err)
	}
	if err := b.Put(secretName, clone(key)); err != nil {
		return fmt.Errorf("installation secret: %w", err)
	}
	return nil
}

// importSecret applies the installation secret of an import (importedSecret checked
// its size; see otpbot.Porter):
// stored when the file has none, kept when equal, replaced only while the
// file holds no dedupe mark inside the window.
func (s *Store) importSecret(tx *bbolt.Tx, key []byte) error {
	cur, err := readKey(tx)
	switch {
	case err != nil:
		return err
	case bytes.Equal(cur, key):
		return nil
	case cur != nil && s.hasLiveDedupe(tx):
		return fmt.Errorf("%w: the store already has a different installation secret and holds dedupe marks made with it, "+
			"so replacing the key would let repeats of those pushes through; import into a fresh store", otpbot.ErrSecretConflict)
	}
	return putKey(tx, key)
}

// hasLiveDedupe reports whether any dedupe mark is still inside the window.
func (s *Store) hasLiveDedupe(tx *bbolt.Tx) bool {
	now := s.now()
	c := tx.Bucket(bDedupeByTime).Cursor()
	for k, _ := c.Seek(appendTime(nil, now.Add(-s.opts.DedupeWindow))); k != nil; k, _ = c.Next() {
		if len(k) >= 8 && now.Sub(keyTime(uint64FromBytes(k[:8]))) < s.opts.DedupeWindow {
			return true
		}
	}
	return false
}
