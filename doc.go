// Package otpbot is the vocabulary of otpbot: the events providers push, the
// chats they are delivered to, the work queued for Telegram and the store
// contracts that hold them. It imports nothing of ours, so every other package
// can depend on it and none of them on each other.
package otpbot
