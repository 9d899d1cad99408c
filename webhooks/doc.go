// Package webhooks is otpbot's HTTP surface for card platforms: it
// authenticates a provider's push, turns the body into an otpbot.Event,
// hands it to the store and answers with the acknowledgement that provider
// expects (CONTRACT §3).
//
// One file per provider holds its typed push structs and pure parser
// (upay.go, hypercard.go); auth.go holds the checks every configured method
// must pass; sign.go the signing helpers shared with tests and tools;
// handler.go the routes and the single error→status mapping.
package webhooks
