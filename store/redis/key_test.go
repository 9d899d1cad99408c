package redis

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpbot/otpbot/store/storetest"
)

// TestInstallationSecretRace: two processes starting at once on a fresh
// prefix both create a key; SET NX keeps one, and both use that one. The
// key lives under the hash-tagged base and never expires.
func TestInstallationSecretRace(t *testing.T) {
	opts := storetest.DefaultOptions(time.Now)
	a, c, prefix := newTestStore(t, opts)
	b := openStore(t, c, prefix, opts)

	const n = 16
	keys := make([][]byte, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			<-start
			keys[i], errs[i] = s.InstallationSecret(t.Context())
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("InstallationSecret: %v", errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("two processes got different keys: %x and %x", keys[0], keys[i])
		}
	}

	name := Base(prefix) + "ikey"
	stored, err := c.Get(t.Context(), name).Bytes()
	if err != nil || !bytes.Equal(stored, keys[0]) {
		t.Fatalf("GET %s = %x, %v; want %x", name, stored, err, keys[0])
	}
	if ttl, err := c.PTTL(t.Context(), name).Result(); err != nil || ttl != -1 {
		t.Fatalf("PTTL %s = %v, %v; want no expiry (-1)", name, ttl, err)
	}
}

// TestInstallationSecretCorrupt: a key of the wrong size is an error, never
// silently replaced (a new key would let repeats of earlier pushes through).
func TestInstallationSecretCorrupt(t *testing.T) {
	s, c, prefix := newTestStore(t, storetest.DefaultOptions(time.Now))
	name := Base(prefix) + "ikey"
	if err := c.Set(t.Context(), name, "short", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if k, err := s.InstallationSecret(t.Context()); err == nil {
		t.Fatalf("InstallationSecret = %x, want an error for a 5-byte key", k)
	}
	if v, _ := c.Get(t.Context(), name).Result(); v != "short" {
		t.Fatalf("the bad key was replaced by %q", v)
	}
}

// TestShardBases: the shards of a prefix spread evenly over the hash
// slots (one in each sixteenth), whatever the prefix, and their keys keep
// the prefix.
func TestShardBases(t *testing.T) {
	// Slots Redis itself computes for these tags (CLUSTER KEYSLOT).
	for tag, slot := range map[string]uint16{"otpbot": 7394, "123456789": 12739, "foo": 12182} {
		if got := crc16(tag) % slotCount; got != slot {
			t.Errorf("slot of %q = %d, want %d", tag, got, slot)
		}
	}
	for _, prefix := range []string{"otpbot:", "otpbot-test:a1b2:", "app:{x}:"} {
		home := Base(prefix)
		seen := map[int]bool{}
		for i := 1; i < clusterShards; i++ {
			b := shardBase(home, i)
			if !strings.HasPrefix(b, prefix[:strings.IndexAny(prefix+"{", "{")]) {
				t.Errorf("shard %d of %q: base %q does not keep the prefix", i, prefix, b)
			}
			tag := b[strings.IndexByte(b, '{')+1 : strings.IndexByte(b, '}')]
			seg := int(crc16(tag)%slotCount) * clusterShards / slotCount
			if seg != i || seen[seg] {
				t.Errorf("shard %d of %q (%s) is in sixteenth %d", i, prefix, b, seg)
			}
			seen[seg] = true
		}
	}
}
