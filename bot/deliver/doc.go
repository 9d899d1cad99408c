// Package deliver is the outbox worker: it claims due Telegram work from
// the store, most urgent first (run.go), and carries out each job in
// stages — what the message must show and what that looks like
// (message.go), whether the rate budget lets the call go, the call, and
// recording what Telegram accepted (finish.go) — with failures handled by
// their class (failure.go), ops notices and /codes deletions (notice.go),
// live countdowns (live.go), recovery after an outage (recovery.go) and
// the copies a crash left (orphans.go). Ops reports (ops.go) are queued
// here too. It talks to Telegram only through bot/telegram.
package deliver
