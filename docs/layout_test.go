package docs

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is the module path, cut from import paths below.
const module = "github.com/otpbot/otpbot"

// allowedImports are the packages of ours each package may import: the
// arrows of docs/architecture.md, pointing one way (cmd → webhooks, bot,
// bot/deliver, stores, templates → bot/telegram → the domain). Test-only
// packages (fakes, conformance suites) and tools (bench, deploy, docs) are
// not listed: they may import what they test. chatpage, otpbot demo's
// page, sees only the fake Bot API.
var allowedImports = map[string][]string{
	".":                               {},
	"internal/promreg":                {},
	"internal/wait":                   {},
	"hyperpay":                        {},
	"logs":                            {"."},
	"templates":                       {"."},
	"webhooks":                        {".", "hyperpay", "internal/promreg", "internal/wait"},
	"store/bolt":                      {".", "internal/wait"},
	"store/redis":                     {".", "internal/wait"},
	"bot/telegram":                    {".", "internal/promreg", "internal/wait"},
	"bot/deliver":                     {".", "bot/telegram", "templates", "internal/promreg", "internal/wait"},
	"bot":                             {".", "bot/telegram", "templates", "internal/promreg", "internal/wait"},
	"cmd/otpbot":                      nil, // everything
	"bot/bottest":                     nil,
	"chatpage":                        {"bot/bottest"},
	"hyperpay/hptest":                 nil,
	"store/storetest":                 nil,
	"store/redis/redistest":           nil,
	"store/redis/internal/scriptargs": nil, // its test generates store/redis/scriptargs_*_gen.go
	"bench":                           nil,
	"deploy":                          nil,
	"deploy/healthcheck":              nil,
	"docs":                            nil,
}

// TestPackagesImportOnlyInward keeps the arrows one way: `go list` names
// each package's imports, and a package may import only the packages of
// ours its row allows. A new package must be given a row.
func TestPackagesImportOnlyInward(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := ours(fields[0])
		allowed, known := allowedImports[pkg]
		if !known {
			t.Errorf("package %s has no row in allowedImports: say which of our packages it may import", pkg)
			continue
		}
		if allowed == nil {
			continue
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			if dep := ours(imp); !slices.Contains(allowed, dep) {
				t.Errorf("%s imports %s; it may import only %v", pkg, dep, allowed)
			}
		}
	}
}

// ours is an import path of this module relative to its root ("." for the
// root package).
func ours(path string) string {
	if path == module {
		return "."
	}
	return strings.TrimPrefix(path, module+"/")
}
