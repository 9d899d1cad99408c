package deploy

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// contractShutdownTimeout is shutdown_timeout's default
// (docs/configuration.md), used when config.example.yaml is not there to
// say otherwise.
const contractShutdownTimeout = 15 * time.Second

// repoRoot is the repository root; go test runs in deploy/.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s: %v", root, err)
	}
	return root
}

// readRepoFile reads a file by its path from the repository root.
func readRepoFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// shutdownTimeout is the default shutdown_timeout otpbot ships with: the
// stop timeouts of the unit, the image and compose must exceed it, or the
// service manager kills otpbot while it is still draining.
func shutdownTimeout(t *testing.T) time.Duration {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "config.example.yaml"))
	if errors.Is(err, os.ErrNotExist) {
		t.Logf("config.example.yaml not found; using the documented default shutdown_timeout %v", contractShutdownTimeout)
		return contractShutdownTimeout
	}
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ShutdownTimeout string `yaml:"shutdown_timeout"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
	if cfg.ShutdownTimeout == "" {
		return contractShutdownTimeout
	}
	d, err := time.ParseDuration(cfg.ShutdownTimeout)
	if err != nil {
		t.Fatalf("config.example.yaml shutdown_timeout: %v", err)
	}
	return d
}

// goDirective is the go line of go.mod, e.g. "1.26.8".
func goDirective(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^go\s+(\S+)\s*$`).FindStringSubmatch(readRepoFile(t, "go.mod"))
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return m[1]
}

// wantErrorMentioning fails unless one of errs contains substr. It is how the
// mutation tables prove that a check would catch the mistake it names.
func wantErrorMentioning(t *testing.T, errs []error, substr string) {
	t.Helper()
	for _, err := range errs {
		if strings.Contains(err.Error(), substr) {
			return
		}
	}
	t.Errorf("no error mentions %q; got %v", substr, errs)
}

// reportErrors fails the test once per error.
func reportErrors(t *testing.T, what string, errs []error) {
	t.Helper()
	for _, err := range errs {
		t.Errorf("%s: %v", what, err)
	}
}

// makeCmd runs make in the repository root with an environment that does not
// override the Makefile's own variables.
func makeCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("make", append([]string{"--no-print-directory", "-C", repoRoot(t)}, args...)...)
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "VERSION", "GO", "BIN", "VULNDB", "MAKEFLAGS", "MFLAGS":
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	return cmd
}

// makeDryRun is what `make -n ARGS` would run.
func makeDryRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := makeCmd(t, append([]string{"-n"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("make -n %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestMakefile(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		// Without make, hold the Makefile's text to the same promises.
		src := readRepoFile(t, "Makefile")
		for _, want := range []string{
			"\t$(GO) test -count=1 ./...\n",
			"-X main.version=$(VERSION)",
			"git describe --tags --always --dirty",
			"$(GO) vet ./...",
			"$(GO) tool staticcheck ./...",
		} {
			if !strings.Contains(src, want) {
				t.Errorf("Makefile lacks %q", want)
			}
		}
		return
	}

	t.Run("test runs the README's command", func(t *testing.T) {
		if got, want := makeDryRun(t, "test"), "go test -count=1 ./..."; got != want {
			t.Errorf("make test runs %q, want %q", got, want)
		}
	})
	t.Run("build is static, trimmed and stamped", func(t *testing.T) {
		got := makeDryRun(t, "build", "VERSION=v9.9.9-make")
		for _, want := range []string{"CGO_ENABLED=0 ", "go build ", "-trimpath", "-X main.version=v9.9.9-make", "-o bin/otpbot", "./cmd/otpbot"} {
			if !strings.Contains(got, want) {
				t.Errorf("make build runs %q, which lacks %q", got, want)
			}
		}
	})
	t.Run("VERSION defaults to git describe", func(t *testing.T) {
		m := regexp.MustCompile(`-X main\.version=(\S+?)"?(\s|$)`).FindStringSubmatch(makeDryRun(t, "build"))
		if m == nil || m[1] == "" {
			t.Fatalf("make build stamps no version")
		}
		want := "dev"
		if out, err := exec.Command("git", "-C", repoRoot(t), "describe", "--tags", "--always", "--dirty").Output(); err == nil {
			want = strings.TrimSpace(string(out))
		}
		// -dirty can come and go while others edit the tree; the commit must match.
		if strings.TrimSuffix(m[1], "-dirty") != strings.TrimSuffix(want, "-dirty") {
			t.Errorf("make build stamps %q, want %q", m[1], want)
		}
	})
	t.Run("lint runs gofmt, vet and staticcheck", func(t *testing.T) {
		got := makeDryRun(t, "lint")
		for _, want := range []string{"gofmt -l", "go vet ./...", "go tool staticcheck ./..."} {
			if !strings.Contains(got, want) {
				t.Errorf("make lint runs\n%s\nwhich lacks %q", got, want)
			}
		}
	})
	t.Run("vulncheck skips without a database and uses one when given", func(t *testing.T) {
		out, err := makeCmd(t, "-s", "vulncheck").CombinedOutput()
		if err != nil {
			t.Fatalf("make vulncheck without VULNDB failed (it must not fail CI): %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "skipped") {
			t.Errorf("make vulncheck without VULNDB says %q, want it to say it skipped", out)
		}
		if got, want := makeDryRun(t, "vulncheck", "VULNDB=file:///srv/govulndb"), "go tool govulncheck -db file:///srv/govulndb ./..."; got != want {
			t.Errorf("make vulncheck VULNDB=... runs %q, want %q", got, want)
		}
	})
	t.Run("bench runs benchmarks only", func(t *testing.T) {
		got := makeDryRun(t, "bench")
		for _, want := range []string{"go test ", "-run '^$'", "-bench", "-benchmem", "./..."} {
			if !strings.Contains(got, want) {
				t.Errorf("make bench runs %q, which lacks %q", got, want)
			}
		}
	})
}

// TestMakeBuild builds the real binary the way an operator does and asks it
// its version: the -ldflags stamp reaches `otpbot version`, and the binary is
// static, so it runs on distroless or any Linux.
func TestMakeBuild(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is needed to build as the README says: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "otpbot")
	if out, err := makeCmd(t, "build", "VERSION=v0.0.0-deploytest", "BIN="+bin).CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("otpbot version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "otpbot v0.0.0-deploytest") {
		t.Errorf("otpbot version printed %q, want it to start with %q", out, "otpbot v0.0.0-deploytest")
	}
	if err := checkStatic(bin); err != nil {
		t.Error(err)
	}
}

// checkStatic reports an ELF file that needs a dynamic loader or libraries.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (has an ELF interpreter); build with CGO_ENABLED=0", path)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("%s needs shared libraries %v", path, libs)
	}
	return nil
}

func TestCheckStaticCatchesDynamicBinaries(t *testing.T) {
	// /bin/sh is a dynamically linked program on every Debian machine this
	// suite runs on; checkStatic must refuse it or it proves nothing.
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	sh, err = filepath.EvalSymlinks(sh)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkStatic(sh); err == nil {
		t.Errorf("checkStatic(%s) passed; want it to report dynamic linking", sh)
	}
}

// configEnvNames is every OTPBOT_ variable config.example.yaml's keys give
// (docs/contract.md#configuration: OTPBOT_ + the key path upper-cased,
// "." → "_").
func configEnvNames(t *testing.T) map[string]bool {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "config.example.yaml")), &root); err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
	names := map[string]bool{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind == yaml.DocumentNode {
			for _, c := range n.Content {
				walk(c, prefix)
			}
			return
		}
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			name := prefix + "_" + strings.ToUpper(n.Content[i].Value)
			names[name] = true
			walk(n.Content[i+1], name)
		}
	}
	walk(&root, "OTPBOT")
	return names
}

var otpbotEnvRe = regexp.MustCompile(`\bOTPBOT_[A-Z0-9_]+\b`)

// TestDeployEnvironmentNamesExist keeps the OTPBOT_ variables the deployment
// files set or tell operators to set in step with the configuration: a
// renamed key would otherwise be silently ignored in production.
func TestDeployEnvironmentNamesExist(t *testing.T) {
	known := configEnvNames(t)
	if !known["OTPBOT_STORE_REDIS_ADDR"] {
		t.Fatalf("config.example.yaml walk found no OTPBOT_STORE_REDIS_ADDR; found %d names", len(known))
	}
	// Not configuration keys: the variable that names the file, and compose's
	// own variable for the image tag.
	known["OTPBOT_CONFIG"] = true
	known["OTPBOT_VERSION"] = true
	for _, f := range []string{"Dockerfile", "deploy/compose.yaml", "deploy/compose.sentinel.yaml", "deploy/otpbot.service", "Makefile"} {
		for _, name := range otpbotEnvRe.FindAllString(readRepoFile(t, f), -1) {
			if !known[name] {
				t.Errorf("%s mentions %s, which is no key of config.example.yaml", f, name)
			}
		}
	}
}
