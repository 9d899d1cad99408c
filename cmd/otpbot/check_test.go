package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestCheckWarnings: check warns (and still exits 0) about a configuration
// file holding secrets that others can read, a private key or secret file
// every user can read, and a bot without admins. Secrets are never
// printed.
func TestCheckWarnings(t *testing.T) {
	dir := t.TempDir()
	upayKey, upayPub := rsaPair(t, dir, "upay", 1024)
	apiKey, hcPub := rsaPair(t, dir, "hcapi", 1024)
	tokenFile := writeFile(t, dir, "token", testToken)
	// Secrets in the file; the environment variant has them in the
	// environment only.
	withSecrets := fmt.Sprintf(`
telegram:
  token: %q
  admins: [%d]
providers:
  upay: {token: %q}
  hypercard: {token: %q}
`, testToken, adminID, upayToken, hcToken)
	noSecrets := fmt.Sprintf("telegram:\n  admins: [%d]\n", adminID)
	secretEnv := map[string]string{"OTPBOT_TELEGRAM_TOKEN": testToken, "OTPBOT_PROVIDERS_UPAY_TOKEN": upayToken,
		"OTPBOT_PROVIDERS_HYPERCARD_TOKEN": hcToken}
	keys := fmt.Sprintf(`
telegram:
  token_file: %q
  admins: [%d]
providers:
  upay: {token: %q, private_key_file: %q}
  hypercard:
    token: %q
    public_key_file: %q
    api: {base_url: "https://hc.example", api_key: "ak-1", private_key_file: %q}
`, tokenFile, adminID, upayToken, upayKey, hcToken, hcPub, apiKey)

	tests := []struct {
		name  string
		body  string
		mode  os.FileMode
		env   map[string]string
		files map[string]os.FileMode // chmod before the run
		want  []string               // warnings expected, by a fragment each
	}{
		{"config readable by others, with secrets", withSecrets, 0o644, nil, nil,
			[]string{"is readable by group or others (0644) and holds secrets (telegram.token, providers.upay.token, providers.hypercard.token)"}},
		{"config readable by the group, with secrets", withSecrets, 0o640, nil, nil,
			[]string{"is readable by group or others (0640)"}},
		{"config owner-only", withSecrets, 0o600, nil, nil, nil},
		{"config readable by others, secrets in the environment", noSecrets, 0o644, secretEnv, nil, nil},
		{"no admins", "telegram: {token: \"" + testToken + "\"}\nproviders: {upay: {token: x1234}, hypercard: {token: y1234}}\n", 0o600, nil, nil,
			[]string{"telegram.admins is empty: nobody can /link"}},
		{"world-readable private keys and token file", keys, 0o600, nil,
			map[string]os.FileMode{upayKey: 0o644, apiKey: 0o604, tokenFile: 0o644, hcPub: 0o644, upayPub: 0o644},
			[]string{"providers.upay.private_key_file " + upayKey + " is readable by every user (0644)",
				"providers.hypercard.api.private_key_file " + apiKey + " is readable by every user (0604)",
				"telegram.token_file " + tokenFile + " is readable by every user"}},
		{"private keys for the owner and the group", keys, 0o600, nil,
			map[string]os.FileMode{upayKey: 0o640, apiKey: 0o600, tokenFile: 0o600, hcPub: 0o644}, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeFile(t, dir, fmt.Sprintf("c%d.yaml", i), tt.body)
			for p, m := range tt.files {
				if err := os.Chmod(p, m); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(cfg, tt.mode); err != nil {
				t.Fatal(err)
			}
			out, _, err := runCmd(t, tt.env, "", "check", "-offline", "-config", cfg)
			if err != nil {
				t.Fatalf("check failed (exit %d): %v\n%s", exitCode(err), err, out)
			}
			var warnings []string
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "warning: ") {
					warnings = append(warnings, l)
				}
			}
			if len(warnings) != len(tt.want) {
				t.Errorf("%d warnings, want %d:\n%s", len(warnings), len(tt.want), out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("no warning with %q:\n%s", w, out)
				}
			}
			for _, secret := range []string{testToken, upayToken, hcToken, "ak-1"} {
				if strings.Contains(out, secret) {
					t.Errorf("check printed a secret:\n%s", out)
				}
			}
		})
	}
}
