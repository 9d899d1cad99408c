package main

import (
	"strconv"
	"strings"

	"github.com/otpbot/otpbot"
)

// What an AUTH_3DS auth_result means: one mapping, from the configuration,
// that the webhooks apply to every push (and render to its sample).

// authResults is the one reading of AUTH_3DS's auth_result: the values
// otpbot's own answers send (api.approve_result, api.decline_result), then
// providers.hypercard.auth_results over them. When otpbot answers
// requests (api.base_url), auth_results may not read its own answers the
// other way round.
func authResults(h HyperCardConfig) (map[int]otpbot.AuthState, error) {
	const key = "providers.hypercard.auth_results"
	out := map[int]otpbot.AuthState{h.API.ApproveResult: otpbot.AuthApproved, h.API.DeclineResult: otpbot.AuthDeclined}
	for k, v := range h.AuthResults {
		n, err := strconv.Atoi(strings.TrimSpace(k))
		if err != nil {
			return nil, cfgErr(key, "%q is not a whole number (the auth_result)", k)
		}
		st := otpbot.AuthState(strings.ToLower(strings.TrimSpace(v)))
		switch st {
		case otpbot.AuthApproved, otpbot.AuthDeclined, otpbot.AuthPending:
		default:
			return nil, cfgErr(key, "%d must be approved, declined or pending (got %q)", n, v)
		}
		if h.API.BaseURL != "" && (n == h.API.ApproveResult && st != otpbot.AuthApproved ||
			n == h.API.DeclineResult && st != otpbot.AuthDeclined) {
			return nil, cfgErr(key, "%d is %s, but otpbot sends it to answer %s (providers.hypercard.api)",
				n, st, map[bool]string{true: "approve", false: "decline"}[n == h.API.ApproveResult])
		}
		out[n] = st
	}
	return out, nil
}

// validateAuthResults checks providers.hypercard.auth_results (render
// needs it too).
func validateAuthResults(cfg *Config) error {
	_, err := authResults(cfg.Providers.HyperCard)
	return err
}

// validAuthResults is authResults of a configuration that passed
// validation (which refuses one it cannot read).
func validAuthResults(cfg *Config) map[int]otpbot.AuthState {
	m, _ := authResults(cfg.Providers.HyperCard)
	return m
}
