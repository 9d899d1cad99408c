// Package hyperpay speaks HyperCard's (HyperPay's) merchant API: the one
// signature scheme HyperCard uses both for the pushes it sends and for the
// API requests a merchant sends (sign.go), and a Client for the 3-D Secure
// approval endpoints (client.go).
//
// Both directions share one implementation on purpose: webhooks verifies
// HyperCard's pushes with Verify, and Client signs its requests with Sign,
// so a fix to the signed string can never reach one side and miss the other.
//
// The package imports only the standard library, so that webhooks (which
// imports only otpbot) may depend on it. hptest holds a fake HyperCard API
// server for tests.
package hyperpay
