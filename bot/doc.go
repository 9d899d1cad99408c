// Package bot is the conversation: the bot commands (commands.go,
// keyargs.go), the buttons under otpbot's messages (callbacks.go), the
// answers to HyperCard approval requests (approve*.go), replies in a
// code's thread (followups.go), and the queue that sends every answer in the
// background through the rate budget (replies.go). The wire to Telegram is
// bot/telegram; the outbox worker that sends codes is bot/deliver.
package bot
