package storetest

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

var keyTests = []subtest{
	{"stable random key", testKeyStable},
	{"concurrent first calls agree", testKeyConcurrent},
}

var keyPorterTests = []subtest{
	{"key travels with an export", testKeyRoundTrip},
	{"import key into a store with another key", testKeyImportReplace},
}

// key returns the store's installation secret, checking its shape.
func (e *env) key() []byte {
	e.t.Helper()
	k, err := e.s.InstallationSecret(e.ctx)
	if err != nil {
		e.t.Fatalf("InstallationSecret: %v", err)
	}
	if len(k) != otpbot.InstallationSecretSize {
		e.t.Fatalf("InstallationSecret is %d bytes, want %d", len(k), otpbot.InstallationSecretSize)
	}
	if bytes.Equal(k, make([]byte, len(k))) {
		e.t.Fatal("InstallationSecret is all zero")
	}
	return k
}

// exportedSecrets lists the installation secrets of an export and fails unless
// any comes first.
func exportedSecrets(t *testing.T, recs []otpbot.Record) [][]byte {
	t.Helper()
	var keys [][]byte
	for i, r := range recs {
		if r.InstallationSecret != nil {
			if i != 0 {
				t.Fatalf("the installation secret is record %d of the export, want the first", i)
			}
			keys = append(keys, r.InstallationSecret)
		}
	}
	return keys
}

func testKeyStable(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	e.link(cardC1, chatA)
	if keys := exportedSecrets(t, e.export()); len(keys) != 0 {
		t.Fatalf("Export made or invented a key: %x", keys)
	}
	first := e.key()
	for range 3 {
		if again := e.key(); !bytes.Equal(again, first) {
			t.Fatalf("InstallationSecret changed between calls: %x then %x", first, again)
		}
	}
	// Changing the returned slice must not change the store's key.
	first[0] ^= 0xff
	if again := e.key(); bytes.Equal(again, first) {
		t.Fatal("the caller's copy of the key aliases the store's")
	}
	first[0] ^= 0xff
	if other := e.second(newStore).key(); bytes.Equal(other, first) {
		t.Fatalf("two fresh stores share the key %x: it is not random", first)
	}
	keys := exportedSecrets(t, e.export())
	if len(keys) != 1 || !bytes.Equal(keys[0], first) {
		t.Fatalf("exported keys %x, want [%x]", keys, first)
	}
}

func testKeyConcurrent(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	concurrentKeys(t, e, e.s)
}

// concurrentKeys calls InstallationSecret on the stores (round robin) from n
// goroutines at once, fails unless all got the same key and returns it.
func concurrentKeys(t *testing.T, e *env, stores ...otpbot.SecretStore) []byte {
	t.Helper()
	const n = 8
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			keys[i], errs[i] = stores[i%len(stores)].InstallationSecret(e.ctx)
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("InstallationSecret: %v", errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("concurrent first calls got different keys: %x and %x", keys[0], keys[i])
		}
	}
	if len(keys[0]) != otpbot.InstallationSecretSize {
		t.Fatalf("InstallationSecret is %d bytes", len(keys[0]))
	}
	return keys[0]
}

func testKeyRoundTrip(t *testing.T, newStore NewStoreFunc) {
	src := newEnv(t, newStore)
	key := src.key()
	src.link(cardC1, chatA)
	src.ingest(infoEvent("i1", "C1", src.clock.Now()))
	recs := src.export()

	dst := src.second(newStore)
	if err := dst.s.Import(dst.ctx, recs); err != nil {
		t.Fatalf("Import: %v", err)
	}
	if got := dst.key(); !bytes.Equal(got, key) {
		t.Fatalf("imported store's key %x, want the source's %x", got, key)
	}
	equal(t, "export of the imported store", canonical(dst.export()), canonical(recs))
	// Importing the same export again (same key, marks and all) is fine.
	if err := dst.s.Import(dst.ctx, recs); err != nil {
		t.Fatalf("Import again: %v", err)
	}
}

func testKeyImportReplace(t *testing.T, newStore NewStoreFunc) {
	src := newEnv(t, newStore)
	srcKey := src.key()
	src.link(cardC2, chatB)
	recs := src.export()

	tests := []struct {
		name string
		// prepare fills the target (whose own key exists already).
		prepare func(dst *env)
		recs    []otpbot.Record
		// conflict: Import must fail with ErrKeyConflict and write nothing.
		conflict bool
	}{
		{name: "no dedupe marks: the key is replaced", prepare: func(dst *env) {
			dst.link(cardC1, chatA) // data, but no mark
		}, recs: recs},
		{name: "a dedupe mark inside the window: refused", prepare: func(dst *env) {
			dst.ingest(infoEvent("seen", "C1", dst.clock.Now()))
		}, recs: recs, conflict: true},
		{name: "only marks outside the window: the key is replaced", prepare: func(dst *env) {
			dst.ingest(infoEvent("old", "C1", dst.clock.Now()))
			dst.clock.Advance(dst.opts.DedupeWindow + time.Minute)
		}, recs: recs},
		{name: "two different keys in one import: refused", recs: append([]otpbot.Record{
			{InstallationSecret: bytes.Repeat([]byte{7}, otpbot.InstallationSecretSize)}}, recs...), conflict: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := src.second(newStore)
			dst.t = t
			own := dst.key()
			if tt.prepare != nil {
				tt.prepare(dst)
			}
			err := dst.s.Import(dst.ctx, tt.recs)
			if !tt.conflict {
				if err != nil {
					t.Fatalf("Import: %v", err)
				}
				if got := dst.key(); !bytes.Equal(got, srcKey) {
					t.Fatalf("key after import %x, want the imported %x", got, srcKey)
				}
				return
			}
			if !errors.Is(err, otpbot.ErrSecretConflict) {
				t.Fatalf("Import: %v, want ErrKeyConflict", err)
			}
			if got := dst.key(); !bytes.Equal(got, own) {
				t.Fatalf("a refused import changed the key to %x", got)
			}
			if links := dst.links(cardC2); len(links) != 0 {
				t.Fatalf("a refused import wrote records: %s", js(links))
			}
		})
	}
}

// SameDataFunc opens a store on fresh backing data and returns it with a
// function that opens another store on the same data (the same file, the
// same Redis prefix). A driver whose data only one store may hold at a
// time closes the first before it opens the next. Both stores are closed
// when the test ends.
type SameDataFunc func(t *testing.T, opts otpbot.StoreOptions) (first otpbot.Store, reopen func() otpbot.Store)

// RunShared runs the checks that need two stores on the same backing data:
// every process on a store, and every restart, uses one installation secret.
func RunShared(t *testing.T, open SameDataFunc) {
	t.Run("installation secret is shared and survives reopening", func(t *testing.T) {
		clock := NewClock(epoch)
		opts := DefaultOptions(clock.Now)
		first, reopen := open(t, opts)
		e := &env{t: t, ctx: t.Context(), clock: clock, opts: opts, s: first}
		key := concurrentKeys(t, e, first)
		if bytes.Equal(key, make([]byte, len(key))) {
			t.Fatal("InstallationSecret is all zero")
		}
		e.s = reopen()
		if got := e.key(); !bytes.Equal(got, key) {
			t.Fatalf("the other store on the same data has key %x, want %x", got, key)
		}
	})
}
