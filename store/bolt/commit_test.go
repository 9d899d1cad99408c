package bolt

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// openDB opens a bare bbolt file with one bucket, closed when the test ends.
func openDB(t *testing.T) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "g.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucket([]byte("b"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return db
}

// queued waits until n calls wait in g's queue.
func queued(t *testing.T, g *groupCommit, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.mu.Lock()
		got := len(g.queue)
		g.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestGroupCommit: a call commits at once when no commit runs; the calls
// that arrive during a commit share the next one; a call whose fn fails
// or panics gets its own outcome while the others commit without it.
func TestGroupCommit(t *testing.T) {
	const n = 8
	tests := []struct {
		name   string
		fail   int // index of the queued call that returns an error, -1: none
		panics int // index of the queued call that panics, -1: none
	}{
		{"all succeed", -1, -1},
		{"one fails", 3, -1},
		{"one panics", -1, 5},
		{"one fails and one panics", 0, n - 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := openDB(t)
			g := &groupCommit{db: db}
			errBoom := errors.New("boom")

			// The first call finds no commit running and commits at once;
			// its fn holds the commit open until released.
			release := make(chan struct{})
			firstIn := make(chan struct{})
			var firstTx int
			firstDone := make(chan error, 1)
			go func() {
				firstDone <- g.Update(func(tx *bbolt.Tx) error {
					firstTx = tx.ID()
					close(firstIn)
					<-release
					return tx.Bucket([]byte("b")).Put([]byte("first"), []byte("x"))
				})
			}()
			<-firstIn

			txs := make([]int, n)
			errs := make([]error, n)
			panics := make([]any, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					defer func() { panics[i] = recover() }()
					errs[i] = g.Update(func(tx *bbolt.Tx) error {
						txs[i] = tx.ID()
						if err := tx.Bucket([]byte("b")).Put(fmt.Appendf(nil, "k%d", i), []byte("x")); err != nil {
							return err
						}
						switch i {
						case tc.fail:
							return errBoom
						case tc.panics:
							panic("bad push")
						}
						return nil
					})
				})
			}
			queued(t, g, n)
			close(release)
			if err := <-firstDone; err != nil {
				t.Fatalf("first call: %v", err)
			}
			wg.Wait()

			var shared []int
			for i := range n {
				switch i {
				case tc.fail:
					if !errors.Is(errs[i], errBoom) {
						t.Errorf("failing call %d returned %v, want its own error", i, errs[i])
					}
				case tc.panics:
					if p, _ := panics[i].(string); !strings.Contains(p, "bad push") {
						t.Errorf("panicking call %d: recovered %v in its own goroutine, want its panic", i, panics[i])
					}
				default:
					if errs[i] != nil || panics[i] != nil {
						t.Errorf("call %d: %v, panic %v; one call's failure must not fail the others", i, errs[i], panics[i])
					}
					shared = append(shared, txs[i])
				}
			}
			for _, id := range shared {
				if id != shared[0] || id == firstTx {
					t.Fatalf("transactions of the successful queued calls %v (first call's %d): want one shared commit after the first", shared, firstTx)
				}
			}
			if err := db.View(func(tx *bbolt.Tx) error {
				b := tx.Bucket([]byte("b"))
				for i := range n {
					got := b.Get(fmt.Appendf(nil, "k%d", i)) != nil
					if want := i != tc.fail && i != tc.panics; got != want {
						t.Errorf("key of call %d stored: %v, want %v", i, got, want)
					}
				}
				if b.Get([]byte("first")) == nil {
					t.Errorf("the first call's key is missing")
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.running || len(g.queue) != 0 {
				t.Fatalf("batcher not idle after all calls returned: running %v, %d queued", g.running, len(g.queue))
			}
		})
	}
}

// TestGroupCommitAlone: calls one after another each commit on their own
// (nothing waits for company), and a commit error reaches the caller.
func TestGroupCommitAlone(t *testing.T) {
	db := openDB(t)
	g := &groupCommit{db: db}
	last := 0
	for i := range 5 {
		var id int
		if err := g.Update(func(tx *bbolt.Tx) error {
			id = tx.ID()
			return tx.Bucket([]byte("b")).Put(fmt.Appendf(nil, "k%d", i), nil)
		}); err != nil {
			t.Fatal(err)
		}
		if id <= last {
			t.Fatalf("call %d ran in transaction %d after %d", i, id, last)
		}
		last = id
	}
	db.Close()
	if err := g.Update(func(tx *bbolt.Tx) error { return nil }); err == nil {
		t.Fatalf("Update on a closed file succeeded")
	}
}
