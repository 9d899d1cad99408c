package main

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:generate go test -run TestConfigurationDoc -update .

// configurationDoc renders docs/configuration.md from the keys of Config,
// their defaults (Defaults) and their meanings (keyDocs). A test compares it
// with the file, so the reference can never drift from the code.
func configurationDoc() string {
	var b strings.Builder
	b.WriteString(`# Configuration reference

<!-- Generated from cmd/otpbot (Defaults and keyDocs) by
     go generate ./cmd/otpbot   (or: go test ./cmd/otpbot -run TestConfigurationDoc -update)
     Do not edit by hand: a test fails when this file and the code disagree. -->

otpbot reads one YAML file (` + "`-config FILE`" + `, or the file named by ` + "`OTPBOT_CONFIG`" + `).
Every key can be overridden by an environment variable: ` + "`OTPBOT_`" + ` + the key path
upper-cased with ` + "`.`" + ` → ` + "`_`" + `, also for keys absent from the file. In the environment,
lists are comma-separated (` + "`OTPBOT_TELEGRAM_ADMINS=111,222`" + `), ` + "`codes.ttl_by_event`" + ` takes
` + "`3DS_OTP=10m,OPT_CODE=5m`" + ` or JSON, booleans take true/false (yes/no, on/off, 1/0), and an
empty variable counts as unset. Durations use Go syntax (` + "`90s`, `5m`, `25h`" + `).
` + "`config.example.yaml`" + ` lists the same keys with the same defaults.

A configuration error stops ` + "`serve`" + ` and ` + "`check`" + ` with exit status 2 and one line that names
the key, e.g. ` + "`config: telegram.token is required`" + `. Secrets are never printed.

Besides the checks of each key, these rules hold across keys:

- an enabled provider needs at least one authentication method: ` + "`token`" + ` or ` + "`secret_key`" + ` for UPay,
  ` + "`token`" + ` or ` + "`public_key_file`" + ` for HyperCard;
- ` + "`dedupe_window`" + ` must exceed the ` + "`signature_tolerance`" + ` of every enabled provider, so that a
  replayed signed request is only ever a repeat;
- key files must parse as RSA keys in PEM (PKCS#1 or PKCS#8 private keys; PKIX, PKCS#1 or
  certificate public keys; a bare Base64 public key as HyperCard's platform shows it is accepted);
- ` + "`telegram.updates: webhook`" + ` needs ` + "`telegram.webhook_url`" + ` (with a path) and ` + "`telegram.webhook_secret`" + `;
- a ` + "`*_file`" + ` key and the key it replaces cannot both be set;
- with ` + "`store.driver: redis`" + `, exactly one of ` + "`store.redis.addr`" + ` (a standalone server; its default
  counts only when neither of the others is set), ` + "`store.redis.sentinel`" + ` (` + "`master_name`" + ` and ` + "`addrs`" + `)
  and ` + "`store.redis.cluster_addrs`" + ` names the Redis; ` + "`store.redis.addrs`" + ` and ` + "`store.redis.master_name`" + ` were
  removed (in a file or in the environment, they are an error that says where they went).
`)
	def := reflect.ValueOf(Defaults())
	section := ""
	for _, f := range configFields() {
		top, _, nested := strings.Cut(f.path, ".")
		if !nested {
			top = "top level"
		}
		if top != section {
			section = top
			fmt.Fprintf(&b, "\n## %s\n\n| key | environment variable | default | meaning |\n|---|---|---|---|\n", section)
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", f.path, f.env(), docDefault(def.FieldByIndex(f.index)), strings.ReplaceAll(keyDocs[f.path], "|", `\|`))
	}
	return b.String()
}

// docDefault renders a default value as it would be written in YAML.
func docDefault(v reflect.Value) string {
	switch {
	case v.Type() == durationType:
		return "`" + shortDuration(time.Duration(v.Int())) + "`"
	case v.Kind() == reflect.String:
		if v.String() == "" {
			return "`\"\"`"
		}
		return "`" + strconv.Quote(v.String()) + "`"
	case v.Kind() == reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(v.Index(i).Interface())
		}
		return "`[" + strings.Join(parts, ", ") + "]`"
	case v.Kind() == reflect.Map:
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, fmt.Sprintf("%s: %v", k, v.MapIndex(k)))
		}
		sort.Strings(keys)
		return "`{" + strings.Join(keys, ", ") + "}`"
	}
	return fmt.Sprintf("`%v`", v.Interface())
}

// shortDuration writes 5m rather than Go's 5m0s.
func shortDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}
