// Package redis is the shared otpbot store: every otpbot.Store interface on
// Redis (standalone, Sentinel or Cluster through go-redis's
// UniversalClient), so that several otpbot processes can share one outbox,
// one set of links and one history.
//
// # Keys
//
// Every key lives under the configured prefix followed by a hash tag
// derived from it: prefix "otpbot:" gives keys "otpbot:{otpbot}:...". The
// shared tag puts all of them in one Cluster slot, which is what lets a Lua
// script touch several of them (and keys it only discovers while running,
// such as the message of each linked target) atomically on Cluster too. A
// prefix that already holds a hash tag ("app:{x}:") is used as it is. On
// Redis Cluster a fresh prefix is split into shards, each a tag of its own
// ("otpbot:{otpbot.3.7}:..."), so that the pushes spread over the
// primaries; what one push writes stays in one shard (see shard.go).
//
// # Atomicity
//
// Each change that spans keys (Ingest, Claim, Complete, Retry, Enqueue,
// UpdateMessage, RedeemInvite, the leases...) is one Lua script: Redis
// runs it atomically, so a crash or a lost connection never leaves half of
// it written, and a caller hears success only after Redis answered. (On a
// sharded prefix a few of them are a script per shard: shard.go lists
// which.) (Redis
// does not roll back a script that fails halfway, which only a bug or an
// out-of-memory server would cause; Ingest therefore writes its dedupe mark
// last, so such a push is retried in full rather than taken for a repeat.)
// What Redis answered is as durable as its persistence makes it: run it
// with appendonly yes when acknowledged pushes must survive a Redis crash.
// On Redis 7.2 or later with AOF on, Ingest also waits (WAITAOF) until the
// push is fsynced to the append-only file before it returns; on older
// servers use appendfsync always. With WithMinReplicasAck, Ingest also
// waits (WAIT) until that many replicas have the push, so that a failover
// (Sentinel, Cluster) promotes a replica that has every acknowledged push.
// Store.Durability reports what the servers do, for `otpbot check` and a
// warning at start.
//
// # The outbox
//
// The outbox is a sorted set per priority, scored by the time a task
// becomes claimable (its due time, or its lease's end while leased), next
// to a hash per task. This fits the queue's contract better than Streams:
// tasks are claimed by priority and then by due time, may be due later
// (countdown ticks, retries with backoff), are replaced by id (refreshes
// coalesce) and take a lease that simply moves their score. Claim is one
// script that takes the lowest scores up to now, stamps each with a random
// lease token and rescores it to the lease's end, so a task leased by a
// process that died becomes claimable again by itself; Complete and Retry
// compare the token and answer otpbot.ErrLeaseLost when it changed. A
// Stream would need a consumer group, XAUTOCLAIM, a separate schedule for
// due-later work and could not replace an entry in place.
//
// # Time
//
// Every outcome (dedupe, retention, expiry of invites and codes, Once and
// leases) follows StoreOptions.Now or the method's explicit time, passed
// into the scripts, never Redis's clock. Redis key expiry is used on top of
// that only as garbage collection, with generous slack, so idle data
// (dedupe marks, history, invites, Once marks, finished messages) leaves
// Redis by itself.
//
// Several processes therefore compare times taken from their own clocks,
// and those clocks must agree: run NTP (chrony, systemd-timesyncd) on
// every machine that runs otpbot against one Redis. A task lease, for
// instance, ends at the claiming process's now plus the lease, and another
// process takes the task over once its own now passes that: a process
// whose clock runs ahead by d cuts every lease short by d (with d beyond
// the lease, two processes send the same message), and one that lags
// takes over dead processes' work late by as much. The same goes for
// leases from AcquireLease, Once marks, the dedupe window and code expiry.
// Skews of a second or two are harmless next to the leases otpbot uses;
// unsynchronised clocks are not. (The clock stays injectable, through
// StoreOptions.Now and the methods' now arguments, because the
// conformance suite drives a fake one.)
//
// # Codes past their expiry
//
// A message in a final state has lost its code and gets a Redis TTL. A
// live message has neither until the deliverer's expiry edit makes it
// final, which waits while Telegram is unreachable. So that its code does
// not stay in Redis (and its AOF) meanwhile, Claim drops the code and link
// of a live message past its expiry when it claims any of its tasks: the
// expiry tick is due at the expiry, and a send retried during an outage at
// its next retry. The message stays live, so that work still edits the
// Telegram message into its expired form. A code therefore outlives its
// expiry in Redis by at most the deliverer's retry backoff, or for as long
// as no otpbot process runs at all. (The embedded store also has a pruner
// that does this; Redis needs no scan of its own.)
//
// # Availability
//
// A call that cannot reach Redis returns an error wrapping
// otpbot.ErrUnavailable (the HTTP layer answers 503). go-redis reconnects
// on the next call; the pub/sub subscriber behind Wake retries with
// backoff. Through Sentinel, go-redis asks the sentinels for the primary
// at each new connection and drops its connections when they announce a
// new one, so a failover is a short outage like any other: its writes
// fail until a replica is promoted, and a subscriber that reconnects looks
// at the new primary's persistence before the next push.
package redis
