package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/viper"
)

// secretKeys are the keys whose values are secrets (the values secretsOf
// redacts); the webhook URL is one because its path is.
var secretKeys = []string{
	"telegram.token", "telegram.webhook_secret", "telegram.webhook_url", "store.redis.password", "store.redis.sentinel.password",
	"providers.upay.token", "providers.upay.secret_key", "providers.hypercard.token",
	"providers.hypercard.api.api_key",
}

// configWarnings lists what `otpbot check` warns about without failing:
// settings that run, but leave a secret readable by others or the bot
// without anyone who can link a card. Each is one line, secrets never in
// it.
func configWarnings(path string, cfg *Config) []string {
	var out []string
	if w := configFileWarning(path); w != "" {
		out = append(out, w)
	}
	out = append(out, keyFileWarnings(cfg)...)
	if len(cfg.Telegram.Admins) == 0 {
		out = append(out, "telegram.admins is empty: nobody can /link or /invite, so no code reaches any chat")
	}
	return out
}

// configFileWarning warns when the configuration file holds a secret and
// users other than its owner can read it.
func configFileWarning(path string) string {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return ""
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return "" // LoadConfig read it; a file changed meanwhile is not worth a warning
	}
	var held []string
	for _, k := range secretKeys {
		if v.IsSet(k) && strings.TrimSpace(v.GetString(k)) != "" {
			held = append(held, k)
		}
	}
	if len(held) == 0 {
		return ""
	}
	return fmt.Sprintf("%s is readable by group or others (%#o) and holds secrets (%s): chmod 600 it, "+
		"or move them to the environment or the *_file keys", path, fi.Mode().Perm(), strings.Join(held, ", "))
}

// keyFileWarnings warns about each private key or secret file in use that
// every user of the machine can read (a public key may be).
func keyFileWarnings(cfg *Config) []string {
	u, h := cfg.Providers.UPay, cfg.Providers.HyperCard
	files := []struct {
		key, path string
		used      bool
	}{
		{"telegram.token_file", cfg.Telegram.TokenFile, true},
		{"providers.upay.secret_key_file", u.SecretKeyFile, true},
		{"providers.upay.private_key_file", u.PrivateKeyFile, u.Enabled},
		{"providers.hypercard.api.api_key_file", h.API.APIKeyFile, true},
		{"store.redis.password_file", cfg.Store.Redis.PasswordFile, true},
		{"store.redis.sentinel.password_file", cfg.Store.Redis.Sentinel.PasswordFile, true},
		{"providers.hypercard.api.private_key_file", h.API.PrivateKeyFile, h.Enabled && h.API.BaseURL != ""},
	}
	var out []string
	for _, f := range files {
		if f.path == "" || !f.used {
			continue
		}
		fi, err := os.Stat(f.path)
		if err != nil || fi.Mode().Perm()&0o004 == 0 {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s is readable by every user (%#o): chmod 600 it (or 640 with the service's group)",
			f.key, f.path, fi.Mode().Perm()))
	}
	return out
}
