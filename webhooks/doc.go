// Package webhooks is otpbot's HTTP surface for card platforms: it
// authenticates a provider's push, turns the body into an otpbot.Event,
// hands it to the store and answers with the acknowledgement that provider
// expects. docs/pushes.md describes the rules for operators.
//
// The providers' typed push structs and pure parsers are in upay.go,
// upay_details.go, hypercard.go and hypercard_parse.go; fields.go declares
// how a field is bounded, required and checked (vet), parse.go how codes
// age on the provider's clock and what auth_result means, clean.go what is
// stripped from every string, identity.go how a push without an id is
// identified; auth.go
// holds the checks every configured method must pass; sign.go the signing
// helpers shared with tests and tools; handler.go the routes and the single
// error→status mapping; report.go the hooks told about stored pushes (ops,
// follow-ups).
package webhooks
