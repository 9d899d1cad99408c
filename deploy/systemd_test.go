package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unitFile is a parsed systemd unit: section → key → every assignment in order.
type unitFile map[string]map[string][]string

// parseUnit reads systemd's ini dialect: [Section] headers, Key=Value lines,
// # and ; comments, and a trailing backslash continuing a value.
func parseUnit(src string) (unitFile, error) {
	u := unitFile{}
	section := ""
	var pending string
	for i, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if pending != "" {
			line = pending + " " + line
			pending = ""
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			pending = strings.TrimSuffix(line, `\`)
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			return nil, fmt.Errorf("line %d: %q is not Key=Value inside a [Section]", i+1, line)
		}
		k = strings.TrimSpace(k)
		u[section][k] = append(u[section][k], strings.TrimSpace(v))
	}
	return u, nil
}

// last is the effective value of a single-valued key ("" if unset).
func (u unitFile) last(section, key string) (string, bool) {
	v := u[section][key]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// list is the effective value of a list-valued key: an empty assignment
// resets the list, as systemd does.
func (u unitFile) list(section, key string) []string {
	var out []string
	for _, v := range u[section][key] {
		if v == "" {
			out = nil
			continue
		}
		out = append(out, strings.Fields(v)...)
	}
	return out
}

func unitBool(v string) bool {
	switch strings.ToLower(v) {
	case "1", "yes", "true", "on":
		return true
	}
	return false
}

// parseSystemdDuration reads systemd time spans such as "20s", "1min 30s" or
// a bare number of seconds.
func parseSystemdDuration(s string) (time.Duration, error) {
	units := map[string]time.Duration{
		"": time.Second, "us": time.Microsecond, "ms": time.Millisecond,
		"s": time.Second, "sec": time.Second, "second": time.Second, "seconds": time.Second,
		"m": time.Minute, "min": time.Minute, "minute": time.Minute, "minutes": time.Minute,
		"h": time.Hour, "hr": time.Hour, "hour": time.Hour, "hours": time.Hour,
	}
	re := regexp.MustCompile(`^(\d+)\s*([a-z]*)`)
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty time span")
	}
	var total time.Duration
	for s != "" {
		m := re.FindStringSubmatch(s)
		if m == nil {
			return 0, fmt.Errorf("bad time span %q", s)
		}
		unit, ok := units[m[2]]
		if !ok {
			return 0, fmt.Errorf("bad time unit %q", m[2])
		}
		n, _ := strconv.Atoi(m[1])
		total += time.Duration(n) * unit
		s = strings.TrimSpace(s[len(m[0]):])
	}
	return total, nil
}

// wantExecStart is the command line the README and docs/contract.md#commands
// give.
const wantExecStart = "/usr/local/bin/otpbot serve -config /etc/otpbot/config.yaml"

// checkUnit holds the unit to what a hardened service needs: a dedicated
// user, a state directory to work in, restarts on failure, secrets from an environment
// file, a stop timeout that outlasts otpbot's drain, and the sandbox.
func checkUnit(u unitFile, shutdown time.Duration) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	const svc = "Service"
	if u[svc] == nil {
		return append(errs, fmt.Errorf("no [Service] section"))
	}
	want := func(key, value string) {
		if got, _ := u.last(svc, key); !strings.EqualFold(got, value) && !(unitBool(value) && unitBool(got)) {
			fail("%s=%q, want %s=%s", key, got, key, value)
		}
	}

	if got, _ := u.last(svc, "ExecStart"); got != wantExecStart {
		fail("ExecStart=%q, want %q", got, wantExecStart)
	}
	user, hasUser := u.last(svc, "User")
	dyn, _ := u.last(svc, "DynamicUser")
	switch {
	case unitBool(dyn):
	case !hasUser || user == "" || user == "root" || user == "0":
		fail("no dedicated user: set DynamicUser=yes or User=otpbot (User=%q)", user)
	}
	if !contains(u.list(svc, "StateDirectory"), "otpbot") {
		fail("StateDirectory does not include otpbot")
	}
	switch wd, _ := u.last(svc, "WorkingDirectory"); wd {
	case "%S/otpbot", "/var/lib/otpbot":
	default:
		fail("WorkingDirectory=%q, want the state directory (%%S/otpbot), where the embedded store's relative path lands", wd)
	}
	if !contains(u[svc]["EnvironmentFile"], "-/etc/otpbot/env") {
		fail("EnvironmentFile=-/etc/otpbot/env missing: secrets belong there, not in the config")
	}

	want("Restart", "on-failure")
	if rs, ok := u.last(svc, "RestartSec"); !ok {
		fail("RestartSec unset: a failing otpbot would be restarted in a tight loop")
	} else if d, err := parseSystemdDuration(rs); err != nil || d < time.Second {
		fail("RestartSec=%q, want at least 1s", rs)
	}
	if !contains(u.list(svc, "RestartPreventExitStatus"), "2") {
		fail("RestartPreventExitStatus lacks 2: a configuration error (exit 2) would restart forever")
	}
	if ts, ok := u.last(svc, "TimeoutStopSec"); !ok {
		fail("TimeoutStopSec unset; systemd's default may cut otpbot's drain short")
	} else if d, err := parseSystemdDuration(ts); err != nil {
		fail("TimeoutStopSec=%q: %v", ts, err)
	} else if d <= shutdown {
		fail("TimeoutStopSec=%s does not exceed shutdown_timeout %v: systemd would SIGKILL otpbot mid-drain", ts, shutdown)
	}
	if n, ok := u.last(svc, "LimitNOFILE"); !ok {
		fail("LimitNOFILE unset")
	} else if v, err := strconv.Atoi(strings.SplitN(n, ":", 2)[0]); err != nil || v < 4096 {
		fail("LimitNOFILE=%q, want a number of at least 4096", n)
	}

	// The sandbox.
	want("NoNewPrivileges", "yes")
	want("ProtectSystem", "strict")
	want("ProtectHome", "yes")
	want("PrivateTmp", "yes")
	if v, ok := u.last(svc, "CapabilityBoundingSet"); !ok || len(u.list(svc, "CapabilityBoundingSet")) != 0 {
		fail("CapabilityBoundingSet=%q, want it empty (otpbot needs no capability)", v)
	}
	if len(u.list(svc, "AmbientCapabilities")) != 0 {
		fail("AmbientCapabilities=%v, want none", u.list(svc, "AmbientCapabilities"))
	}
	fams := u.list(svc, "RestrictAddressFamilies")
	if len(fams) == 0 || strings.HasPrefix(fams[0], "~") || !contains(fams, "AF_INET") || !contains(fams, "AF_INET6") {
		fail("RestrictAddressFamilies=%v, want an allow list with AF_INET and AF_INET6", fams)
	}
	allowed := false
	for _, v := range u[svc]["SystemCallFilter"] {
		if !strings.HasPrefix(v, "~") && contains(strings.Fields(v), "@system-service") {
			allowed = true
		}
	}
	if !allowed {
		fail("SystemCallFilter does not allow-list @system-service")
	}
	if got, _ := u.last("Install", "WantedBy"); got != "multi-user.target" {
		fail("[Install] WantedBy=%q, want multi-user.target so `systemctl enable` starts it at boot", got)
	}
	return errs
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestUnitFile(t *testing.T) {
	u, err := parseUnit(readRepoFile(t, "deploy/otpbot.service"))
	if err != nil {
		t.Fatalf("otpbot.service: %v", err)
	}
	reportErrors(t, "otpbot.service", checkUnit(u, shutdownTimeout(t)))
}

// TestUnitFileChecksCatchMistakes breaks the real unit one way at a time and
// wants checkUnit to name each break.
func TestUnitFileChecksCatchMistakes(t *testing.T) {
	src := readRepoFile(t, "deploy/otpbot.service")
	tests := []struct {
		name, old, new, want string
	}{
		{"root", "DynamicUser=yes", "User=root", "dedicated user"},
		{"no user", "DynamicUser=yes", "", "dedicated user"},
		{"no state dir", "StateDirectory=otpbot", "", "StateDirectory"},
		{"elsewhere", "WorkingDirectory=%S/otpbot", "WorkingDirectory=/", "WorkingDirectory"},
		{"privileges", "NoNewPrivileges=yes", "NoNewPrivileges=no", "NoNewPrivileges"},
		{"writable system", "ProtectSystem=strict", "ProtectSystem=full", "ProtectSystem"},
		{"home", "ProtectHome=yes", "", "ProtectHome"},
		{"shared tmp", "PrivateTmp=yes", "", "PrivateTmp"},
		{"capabilities", "CapabilityBoundingSet=\n", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n", "CapabilityBoundingSet"},
		{"any family", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "", "RestrictAddressFamilies"},
		{"no syscall filter", "SystemCallFilter=@system-service", "", "@system-service"},
		{"always restart loop", "RestartPreventExitStatus=2", "", "RestartPreventExitStatus"},
		{"no restart", "Restart=on-failure", "Restart=no", "Restart="},
		{"tight loop", "RestartSec=5s", "", "RestartSec"},
		{"killed mid-drain", "TimeoutStopSec=20s", "TimeoutStopSec=10s", "mid-drain"},
		{"secrets", "EnvironmentFile=-/etc/otpbot/env", "", "EnvironmentFile"},
		{"files", "LimitNOFILE=65536", "", "LimitNOFILE"},
		{"other command", "serve -config /etc/otpbot/config.yaml", "serve", "ExecStart"},
		{"not enabled at boot", "WantedBy=multi-user.target", "", "WantedBy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(src, tt.old) {
				t.Fatalf("otpbot.service no longer contains %q; update this mutation", tt.old)
			}
			u, err := parseUnit(strings.Replace(src, tt.old, tt.new, 1))
			if err != nil {
				t.Fatal(err)
			}
			wantErrorMentioning(t, checkUnit(u, contractShutdownTimeout), tt.want)
		})
	}
}

func TestParseSystemdDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"20s", 20 * time.Second},
		{"20", 20 * time.Second},
		{"1min 30s", 90 * time.Second},
		{"2min", 2 * time.Minute},
		{"500ms", 500 * time.Millisecond},
		{"1h", time.Hour},
	}
	for _, tt := range tests {
		got, err := parseSystemdDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseSystemdDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "soon", "5 fortnights"} {
		if _, err := parseSystemdDuration(bad); err == nil {
			t.Errorf("parseSystemdDuration(%q) succeeded, want an error", bad)
		}
	}
}

// analyzeUnit writes src as otpbot.service in a temp dir, with ExecStart's
// binary replaced by an executable that exists here (verify insists on it),
// and runs systemd-analyze verify and the offline security review on it.
// Any diagnostic verify prints is an error: it exits 0 on unknown keys and
// unparsable values, which it only warns about.
func analyzeUnit(t *testing.T, analyze, src string) (exposure string, verifyErr, securityErr error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(src, "ExecStart=/usr/local/bin/otpbot ") {
		t.Fatal("unit has no ExecStart=/usr/local/bin/otpbot to point at a real executable")
	}
	src = strings.ReplaceAll(src, "ExecStart=/usr/local/bin/otpbot ", "ExecStart="+self+" ")
	dir := t.TempDir()
	unit := filepath.Join(dir, "otpbot.service")
	if err := os.WriteFile(unit, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(analyze, "verify", "--man=no", unit)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0", "SYSTEMD_PAGER=")
	out, err := cmd.CombinedOutput()
	switch {
	case err != nil:
		verifyErr = fmt.Errorf("systemd-analyze verify: %v\n%s", err, out)
	case len(strings.TrimSpace(string(out))) > 0:
		verifyErr = fmt.Errorf("systemd-analyze verify reported:\n%s", out)
	}

	// Exposure is 0 (locked down) to 10 (unsafe); --threshold takes tenths.
	// 2.0 is the top of systemd's "OK" band.
	cmd = exec.Command(analyze, "security", "--offline=true", "--no-pager", "--threshold=20", unit)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0", "SYSTEMD_PAGER=")
	out, err = cmd.CombinedOutput()
	if m := regexp.MustCompile(`Overall exposure level for otpbot\.service: ([0-9.]+ \S+)`).FindSubmatch(out); m != nil {
		exposure = string(m[1])
	}
	if err != nil {
		securityErr = fmt.Errorf("systemd-analyze security: exposure %s over 2.0 (%v)", exposure, err)
	}
	return exposure, verifyErr, securityErr
}

// TestUnitFileSystemdAnalyze has systemd itself read the unit. Where
// systemd-analyze is not installed, TestUnitFile's checks are what remains.
func TestUnitFileSystemdAnalyze(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: the unit is checked by TestUnitFile's parser only")
		return
	}
	src := readRepoFile(t, "deploy/otpbot.service")
	exposure, verifyErr, securityErr := analyzeUnit(t, analyze, src)
	if verifyErr != nil {
		t.Error(verifyErr)
	}
	if securityErr != nil {
		t.Error(securityErr)
	}
	t.Logf("systemd-analyze security: overall exposure %s", exposure)

	// The same harness must fail a broken unit, or its silence means nothing.
	t.Run("verify catches a bad value", func(t *testing.T) {
		bad := strings.Replace(src, "NoNewPrivileges=yes", "NoNewPrivileges=maybe", 1)
		if _, verifyErr, _ := analyzeUnit(t, analyze, bad); verifyErr == nil {
			t.Error("systemd-analyze verify accepted NoNewPrivileges=maybe")
		}
	})
	t.Run("security catches an unhardened unit", func(t *testing.T) {
		var kept []string
		for _, line := range strings.Split(src, "\n") {
			// Keep only what is not sandboxing: [sections], the command, user and restart policy.
			if strings.HasPrefix(line, "[") || strings.HasPrefix(line, "ExecStart=") ||
				strings.HasPrefix(line, "Description=") || strings.HasPrefix(line, "Restart") ||
				strings.HasPrefix(line, "WantedBy=") {
				kept = append(kept, line)
			}
		}
		if exposure, _, securityErr := analyzeUnit(t, analyze, strings.Join(kept, "\n")+"\n"); securityErr == nil {
			t.Errorf("systemd-analyze security passed an unhardened unit (exposure %s)", exposure)
		}
	})
}
