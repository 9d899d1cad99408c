package docs

import (
	"bytes"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/otpbot/otpbot/bot/bottest"
)

// repoRoot is the repository, seen from this package's directory (the
// working directory of `go test`).
const repoRoot = ".."

// waitDeadline bounds every wait on a condition: generous, since the suite
// runs on a busy 2-core machine.
const waitDeadline = 15 * time.Second

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// otpbotBinary builds ./cmd/otpbot once per test run, as an operator would
// (`go build -trimpath`, as make build does), into a temporary directory.
func otpbotBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "otpbot-docs-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "otpbot")
		cmd := exec.Command("go", "build", "-trimpath", "-o", binPath, "./cmd/otpbot")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/otpbot: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// --- the README, parsed ---

// codeBlock is a fenced block of the README.
type codeBlock struct {
	lang    string
	body    string // without the fences, ending in "\n"
	line    int    // of the opening fence, 1-based
	section string // the "## " heading above it
}

// span is an inline code span (`...`) of the README's prose.
type span struct {
	text    string // whitespace collapsed, "\|" (a pipe inside a table) unescaped
	line    int
	section string
}

type readme struct {
	lines  []string
	blocks []codeBlock
	spans  []span
	// prose is the text outside code blocks, by section.
	prose map[string]string
}

var spanRE = regexp.MustCompile("`([^`]+)`")

func loadReadme(t *testing.T) *readme {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	r := &readme{lines: strings.Split(string(data), "\n"), prose: map[string]string{}}
	section := ""
	var cur *codeBlock
	var prose strings.Builder
	proseStart := 1
	flush := func() {
		text := prose.String()
		for _, m := range spanRE.FindAllStringSubmatchIndex(text, -1) {
			s := strings.Join(strings.Fields(text[m[2]:m[3]]), " ")
			r.spans = append(r.spans, span{
				text:    strings.ReplaceAll(s, `\|`, "|"),
				line:    proseStart + strings.Count(text[:m[0]], "\n"),
				section: section,
			})
		}
		r.prose[section] += text
		prose.Reset()
	}
	for i, l := range r.lines {
		switch {
		case cur == nil && strings.HasPrefix(l, "```"):
			flush()
			cur = &codeBlock{lang: strings.TrimSpace(strings.TrimPrefix(l, "```")), line: i + 1, section: section}
		case cur != nil && strings.TrimSpace(l) == "```":
			r.blocks = append(r.blocks, *cur)
			cur = nil
			proseStart = i + 2
		case cur != nil:
			cur.body += l + "\n"
		default:
			if strings.HasPrefix(l, "## ") {
				flush()
				section = strings.TrimPrefix(l, "## ")
				proseStart = i + 1
			}
			prose.WriteString(l + "\n")
		}
	}
	if cur != nil {
		t.Fatalf("README.md:%d: code block never closed", cur.line)
	}
	flush()
	return r
}

// sectionBlocks returns the blocks of a section with the given language.
func (r *readme) sectionBlocks(section, lang string) []codeBlock {
	var out []codeBlock
	for _, b := range r.blocks {
		if b.section == section && b.lang == lang {
			out = append(out, b)
		}
	}
	return out
}

// commandLines are the shell lines of the README's code: every line of sh
// blocks and the "$ " lines of console blocks (comments cut off), and every
// inline code span.
func (r *readme) commandLines() []span {
	var out []span
	for _, b := range r.blocks {
		for i, l := range strings.Split(strings.TrimRight(b.body, "\n"), "\n") {
			switch b.lang {
			case "sh":
			case "console":
				var ok bool
				if l, ok = strings.CutPrefix(l, "$ "); !ok {
					continue
				}
			default:
				continue
			}
			if j := strings.Index(l, " #"); j >= 0 {
				l = l[:j]
			}
			if strings.HasPrefix(strings.TrimSpace(l), "#") {
				continue
			}
			out = append(out, span{text: l, line: b.line + 1 + i, section: b.section})
		}
	}
	return append(out, r.spans...)
}

// quickStart returns the README's two quick-start commands.
func quickStart(t *testing.T, r *readme) (runCmd, testCmd string) {
	t.Helper()
	blocks := r.sectionBlocks("Quick start", "sh")
	if len(blocks) != 2 {
		t.Fatalf("the Quick start section has %d sh blocks, want 2 (run, test)", len(blocks))
	}
	for i, b := range blocks {
		if n := strings.Count(b.body, "\n"); n != 1 {
			t.Errorf("README.md:%d: quick-start block %d has %d lines, want one command", b.line, i+1, n)
		}
	}
	return strings.TrimSpace(blocks[0].body), strings.TrimSpace(blocks[1].body)
}

// envAssignments returns the leading VAR=value words of a command line.
func envAssignments(cmd string) map[string]string {
	env := map[string]string{}
	for _, w := range strings.Fields(cmd) {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" || strings.ToUpper(k) != k {
			break
		}
		env[k] = v
	}
	return env
}

// --- what the README's reader is told first ---

// runCmdRE is the shape of the quick-start run command: secrets from the
// environment, the bot from the clone, the example configuration.
var runCmdRE = regexp.MustCompile(`^(OTPBOT_[A-Z_]+=\S+ )+go run \./cmd/otpbot serve -config config\.example\.yaml$`)

func TestReadmeStartsWithWhatItIsThenQuickStart(t *testing.T) {
	r := loadReadme(t)
	if r.lines[0] != "# otpbot" {
		t.Fatalf("README.md starts with %q, want the title # otpbot", r.lines[0])
	}
	// One paragraph, then the quick start.
	var paragraphs, i int
	inPara := false
	for i = 1; i < len(r.lines) && !strings.HasPrefix(r.lines[i], "#"); i++ {
		blank := strings.TrimSpace(r.lines[i]) == ""
		if !blank && !inPara {
			paragraphs++
		}
		inPara = !blank
	}
	if paragraphs != 1 {
		t.Errorf("README.md has %d paragraphs before its first heading, want one saying what otpbot is", paragraphs)
	}
	if i == len(r.lines) || r.lines[i] != "## Quick start" {
		t.Fatalf("the first heading after the title is not ## Quick start")
	}
	first := strings.ToLower(r.prose[""])
	for _, w := range []string{"telegram", "3-d secure", "upay", "hypercard", "/link card"} {
		if !strings.Contains(first, w) {
			t.Errorf("the opening paragraph does not mention %q", w)
		}
	}

	runCmd, testCmd := quickStart(t, r)
	if !runCmdRE.MatchString(runCmd) {
		t.Errorf("quick-start run command %q does not run `go run ./cmd/otpbot serve -config config.example.yaml` with its secrets in the environment", runCmd)
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "config.example.yaml")); err != nil {
		t.Errorf("the run command's configuration: %v", err)
	}

	// .ci/run runs exactly the README's test command, as its last command.
	ci, err := os.ReadFile(filepath.Join(repoRoot, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	var last string
	for _, l := range strings.Split(string(ci), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			last = l
		}
	}
	if last != testCmd {
		t.Errorf(".ci/run ends with %q; the README's test command is %q", last, testCmd)
	}
	// The Makefile target it names runs every test of the module, and the
	// Makefile builds the package the run command runs.
	target, ok := strings.CutPrefix(testCmd, "make ")
	if !ok || strings.ContainsAny(target, " \t") {
		t.Fatalf("the test command %q is not one make target", testCmd)
	}
	out := makeDryRun(t, target)
	if !regexp.MustCompile(`(?m)^go test .*\./\.\.\.$`).MatchString(out) {
		t.Errorf("make %s does not run go test over ./...:\n%s", target, out)
	}
	if out := makeDryRun(t, "build"); !strings.Contains(out, "./cmd/otpbot") {
		t.Errorf("make build does not build ./cmd/otpbot, which the run command runs:\n%s", out)
	}
}

func makeDryRun(t *testing.T, target string) string {
	t.Helper()
	cmd := exec.Command("make", "-n", target)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n %s: %v\n%s", target, err, out)
	}
	return string(out)
}

// --- commands and flags ---

// otpbotCommandRE finds "otpbot SUB" in a command line: the binary by
// name, bin/otpbot, or go run ./cmd/otpbot.
var otpbotCommandRE = regexp.MustCompile(`(?:^|[\s/])otpbot ([a-z][a-z-]*)`)

// flagSpanRE is an inline span naming a flag ("-reveal", "-card ID").
var flagSpanRE = regexp.MustCompile(`^--?([a-z][a-z0-9-]*)(?:[ =].*)?$`)

// commandFlags runs `otpbot SUB -h` and returns SUB's flags, or ok false
// when otpbot has no such command.
func commandFlags(t *testing.T, bin, sub string) (flags map[string]bool, ok bool) {
	t.Helper()
	out, _ := exec.Command(bin, sub, "-h").CombinedOutput()
	if strings.Contains(string(out), "unknown command") {
		return nil, false
	}
	flags = map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z][a-z0-9-]*)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	return flags, true
}

// commandArgs cuts a command line after "otpbot SUB" at the end of that
// command (a pipe, a redirection, a list operator, a closing quote).
func commandArgs(rest string) []string {
	if i := strings.IndexAny(rest, "|>;&`)"); i >= 0 {
		rest = rest[:i]
	}
	return strings.Fields(rest)
}

func TestReadmeCommandsAndFlagsExist(t *testing.T) {
	r := loadReadme(t)
	bin := otpbotBinary(t)
	known := map[string]map[string]bool{}
	all := map[string]bool{}
	flagsOf := func(sub string) (map[string]bool, bool) {
		if f, ok := known[sub]; ok {
			return f, f != nil
		}
		f, ok := commandFlags(t, bin, sub)
		known[sub] = f
		for name := range f {
			all[name] = true
		}
		return f, ok
	}
	seen := map[string]bool{}
	for _, l := range r.commandLines() {
		for _, m := range otpbotCommandRE.FindAllStringSubmatchIndex(l.text, -1) {
			sub := l.text[m[2]:m[3]]
			flags, ok := flagsOf(sub)
			if !ok {
				t.Errorf("README.md:%d: `otpbot %s`: otpbot has no command %q", l.line, sub, sub)
				continue
			}
			seen[sub] = true
			for _, a := range commandArgs(l.text[m[3]:]) {
				a = strings.Trim(a, "[]")
				if !strings.HasPrefix(a, "-") || a == "-" {
					continue
				}
				name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
				if !flags[name] {
					t.Errorf("README.md:%d: `otpbot %s` has no flag %s (in %q)", l.line, sub, a, strings.TrimSpace(l.text))
				}
			}
		}
	}
	for _, sub := range []string{"serve", "check", "render", "sign", "backup", "migrate", "version"} {
		if !seen[sub] {
			t.Errorf("the README never shows `otpbot %s`", sub)
		}
	}
	// A flag named on its own (`-reveal`, `-card ID`) belongs to some command.
	for _, sub := range []string{"serve", "check", "render", "sign", "backup", "migrate"} {
		flagsOf(sub)
	}
	for _, s := range r.spans {
		if m := flagSpanRE.FindStringSubmatch(s.text); m != nil && !all[m[1]] {
			t.Errorf("README.md:%d: `%s`: no otpbot command has the flag -%s", s.line, s.text, m[1])
		}
	}
}

// --- configuration keys ---

// configTree is config.example.yaml as nested maps.
type configTree map[string]any

func loadConfigTree(t *testing.T) configTree {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tree map[string]any
	if err := yaml.Unmarshal(data, &tree); err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
	return tree
}

// has reports whether the dotted key path exists in the example: a leaf or
// a section. "*" matches any key at its level; below a map that is empty in
// the example (codes.ttl_by_event: {}) any key is allowed.
func (c configTree) has(path string) bool {
	var walk func(node any, parts []string) bool
	walk = func(node any, parts []string) bool {
		if len(parts) == 0 {
			return true
		}
		m, ok := node.(map[string]any)
		if !ok {
			return false
		}
		if len(m) == 0 {
			return true
		}
		if parts[0] == "*" {
			for _, v := range m {
				if walk(v, parts[1:]) {
					return true
				}
			}
			return false
		}
		v, ok := m[parts[0]]
		return ok && walk(v, parts[1:])
	}
	return walk(map[string]any(c), strings.Split(path, "."))
}

// envNames are the OTPBOT_ variables of every key of the example.
func (c configTree) envNames() map[string]bool {
	out := map[string]bool{"OTPBOT_CONFIG": true}
	var walk func(node any, prefix string)
	walk = func(node any, prefix string) {
		if m, ok := node.(map[string]any); ok && len(m) > 0 {
			for k, v := range m {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(v, p)
			}
			return
		}
		out["OTPBOT_"+strings.ToUpper(strings.ReplaceAll(prefix, ".", "_"))] = true
	}
	walk(map[string]any(c), "")
	return out
}

// leafPaths lists the key paths of a YAML document.
func leafPaths(node any, prefix string) []string {
	m, ok := node.(map[string]any)
	if !ok || len(m) == 0 {
		return []string{prefix}
	}
	var out []string
	for k, v := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		out = append(out, leafPaths(v, p)...)
	}
	sort.Strings(out)
	return out
}

// keySpanRE is an inline span naming a dotted configuration key, maybe
// with a value ("store.driver: redis", "providers.*.token").
var keySpanRE = regexp.MustCompile(`^([a-z_]+(?:\.(?:[a-z0-9_]+|\*))+)(?::.*)?$`)

var envRE = regexp.MustCompile(`\bOTPBOT_[A-Z0-9_]+`)

func TestReadmeConfigKeysExist(t *testing.T) {
	r := loadReadme(t)
	tree := loadConfigTree(t)
	if tree.has("store.drivr") || !tree.has("store.redis.prefix") || !tree.has("providers.*.allow_ips") {
		t.Fatal("configTree.has does not tell keys from non-keys")
	}
	checked := 0
	for _, s := range r.spans {
		m := keySpanRE.FindStringSubmatch(s.text)
		if m == nil {
			continue
		}
		top, _, _ := strings.Cut(m[1], ".")
		if _, isSection := tree[top]; !isSection {
			continue // a file name (config.example.yaml, otpbot.db)
		}
		checked++
		if !tree.has(m[1]) {
			t.Errorf("README.md:%d: `%s`: config.example.yaml has no key %s", s.line, s.text, m[1])
		}
	}
	for _, b := range r.blocks {
		if b.lang != "yaml" {
			continue
		}
		var doc map[string]any
		if err := yaml.Unmarshal([]byte(b.body), &doc); err != nil {
			t.Errorf("README.md:%d: yaml block does not parse: %v", b.line, err)
			continue
		}
		isConfig := false
		for k := range doc {
			if _, ok := tree[k]; ok {
				isConfig = true
			}
		}
		if !isConfig {
			continue // not otpbot's configuration (alert rules)
		}
		for _, p := range leafPaths(doc, "") {
			checked++
			if !tree.has(p) {
				t.Errorf("README.md:%d: the configuration example sets %s, which config.example.yaml does not have", b.line, p)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d configuration keys found in the README; the scan is broken", checked)
	}
	env := tree.envNames()
	for i, l := range r.lines {
		for _, v := range envRE.FindAllString(l, -1) {
			if !env[v] {
				t.Errorf("README.md:%d: %s is the variable of no configuration key", i+1, v)
			}
		}
	}
}

// --- metrics ---

var (
	metricRE     = regexp.MustCompile(`\botpbot_[a-z0-9_]+`)
	registeredRE = regexp.MustCompile(`Name:\s*"(otpbot_[a-z0-9_]+)"`)
)

// registeredMetrics finds the metric names the code registers: the Name of
// a prometheus *Opts in a non-test Go file.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	eachSourceFile(t, func(data []byte) {
		for _, m := range registeredRE.FindAllSubmatch(data, -1) {
			out[string(m[1])] = true
		}
	})
	return out
}

// eachSourceFile calls fn with each non-test Go file of the repository
// (not under testdata), which is what the program runs.
func eachSourceFile(t *testing.T, fn func(data []byte)) {
	t.Helper()
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fn(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestReadmeMetricsAreRegistered(t *testing.T) {
	r := loadReadme(t)
	registered := registeredMetrics(t)
	if !registered["otpbot_pushes_total"] || !registered["otpbot_build_info"] {
		t.Fatalf("the source scan found %v; it is broken", registered)
	}
	mentioned := 0
	for i, l := range r.lines {
		for _, name := range metricRE.FindAllString(l, -1) {
			base := name
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if b, ok := strings.CutSuffix(name, suffix); ok && registered[b] {
					base = b
				}
			}
			mentioned++
			if !registered[base] {
				t.Errorf("README.md:%d: %s is not a metric otpbot registers", i+1, name)
			}
		}
	}
	if mentioned == 0 {
		t.Error("the README names no metric")
	}
	// The alerts the README recommends watch what matters.
	var alerts string
	for _, b := range r.sectionBlocks("Metrics and alerts", "yaml") {
		alerts += b.body
	}
	for _, want := range []string{"otpbot_queue_oldest_seconds", "otpbot_delivery_seconds_bucket", "otpbot_broken_links_total",
		"otpbot_telegram_rate_limited_total", "otpbot_telegram_calls_total", "readyz"} {
		if !strings.Contains(alerts, want) {
			t.Errorf("the alert examples do not use %s", want)
		}
	}
}

// --- log lines ---

var (
	logMsgRE    = regexp.MustCompile(`msg=("[^"]+"|[a-z][a-z0-9_.-]*)`)
	logSourceRE = regexp.MustCompile(`\.(?:Info|Warn|Error|Debug)(?:Context)?\(\s*"([^"]+)"|LogAttrs\([^,]+,[^,]+,\s*"([^"]+)"`)
)

// TestReadmeLogLinesExist: every log message the README quotes
// (msg=listening, msg="telegram connected") is one the code logs.
func TestReadmeLogLinesExist(t *testing.T) {
	r := loadReadme(t)
	logged := map[string]bool{}
	eachSourceFile(t, func(data []byte) {
		for _, m := range logSourceRE.FindAllSubmatch(data, -1) {
			logged[string(m[1])+string(m[2])] = true
		}
	})
	if !logged["listening"] || !logged["push"] {
		t.Fatalf("the source scan found no log messages; it is broken")
	}
	n := 0
	for _, s := range r.spans {
		for _, m := range logMsgRE.FindAllStringSubmatch(s.text, -1) {
			n++
			if msg := strings.Trim(m[1], `"`); !logged[msg] {
				t.Errorf("README.md:%d: otpbot logs no message %q", s.line, msg)
			}
		}
	}
	if n < 10 {
		t.Errorf("the README quotes %d log messages; troubleshooting should name the lines that tell what happened", n)
	}
}

// --- the diagram ---

var (
	mermaidHeadRE = regexp.MustCompile(`^(flowchart|graph)\s+(TB|TD|BT|RL|LR)$`)
	mermaidEdgeRE = regexp.MustCompile(`-->|-\.->|==>|---`)
	mermaidNodeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*\s*[\[({>]`)
)

func TestReadmeMermaidDiagram(t *testing.T) {
	r := loadReadme(t)
	var diagrams []codeBlock
	for _, b := range r.blocks {
		if b.lang == "mermaid" {
			diagrams = append(diagrams, b)
		}
	}
	if len(diagrams) == 0 {
		t.Fatal("the README has no mermaid diagram of the flow")
	}
	for _, d := range diagrams {
		lines := strings.Split(strings.TrimRight(d.body, "\n"), "\n")
		if !mermaidHeadRE.MatchString(strings.TrimSpace(lines[0])) {
			t.Errorf("README.md:%d: the diagram starts with %q, not flowchart/graph and a direction", d.line+1, lines[0])
		}
		for i, l := range lines[1:] {
			l = strings.TrimSpace(l)
			n := d.line + 2 + i
			switch {
			case l == "", strings.HasPrefix(l, "%%"), l == "end",
				strings.HasPrefix(l, "subgraph "), strings.HasPrefix(l, "classDef "),
				strings.HasPrefix(l, "class "), strings.HasPrefix(l, "style "):
				continue
			}
			if strings.Count(l, `"`)%2 != 0 {
				t.Errorf("README.md:%d: unbalanced quotes: %s", n, l)
			}
			if !balanced(l) {
				t.Errorf("README.md:%d: unbalanced brackets outside quotes: %s", n, l)
			}
			if !mermaidEdgeRE.MatchString(l) && !mermaidNodeRE.MatchString(l) {
				t.Errorf("README.md:%d: neither an edge nor a node: %s", n, l)
			}
		}
		// The flow the README promises: provider → webhooks → store → ack;
		// deliverer → Telegram; Telegram updates → commands.
		body := strings.ToLower(d.body)
		for _, w := range []string{"upay", "hypercard", "webhooks", "store", "dedupe", "history", "outbox", "ack", "deliverer", "telegram", "updates", "commands"} {
			if !strings.Contains(body, w) {
				t.Errorf("README.md:%d: the diagram does not show %q", d.line, w)
			}
		}
	}
}

// balanced checks (), [] and {} outside double-quoted labels.
func balanced(s string) bool {
	var stack []rune
	inQuote := false
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	for _, c := range s {
		switch {
		case c == '"':
			inQuote = !inQuote
		case inQuote:
		case c == '(' || c == '[' || c == '{':
			stack = append(stack, c)
		case c == ')' || c == ']' || c == '}':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[c] {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return len(stack) == 0 && !inQuote
}

// --- what a cardholder sees ---

// TestReadmeRenderSamples runs every `$ otpbot render ...` of the README
// and compares its output with what the README shows, so the samples are
// real output, not a drawing of it.
func TestReadmeRenderSamples(t *testing.T) {
	r := loadReadme(t)
	bin := otpbotBinary(t)
	runCmd, _ := quickStart(t, r)
	env := baseEnv(envAssignments(runCmd))
	var shown []string
	for _, b := range r.blocks {
		if b.lang != "console" {
			continue
		}
		first, want, _ := strings.Cut(b.body, "\n")
		args, ok := strings.CutPrefix(first, "$ otpbot render ")
		if !ok {
			continue
		}
		cmd := exec.Command(bin, append([]string{"render"}, strings.Fields(args)...)...)
		cmd.Dir = repoRoot
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		got, err := cmd.Output()
		if err != nil {
			t.Errorf("README.md:%d: %s: %v\n%s", b.line+1, first, err, stderr.String())
			continue
		}
		if string(got) != want {
			t.Errorf("README.md:%d: the README shows output that `otpbot render` no longer prints; paste the real one.\n--- README\n%s--- otpbot render\n%s", b.line+1, want, got)
		}
		shown = append(shown, strings.SplitN(want, "\n", 2)[0])
	}
	for _, w := range []string{"upay 3DS_OTP", "hypercard AUTH_3DS"} {
		found := false
		for _, s := range shown {
			found = found || strings.HasPrefix(s, w)
		}
		if !found {
			t.Errorf("the README shows no rendering of a %s push", w)
		}
	}
}

// --- the operator's walk-through ---

// baseEnv is a child's environment: enough to run, none of the developer's
// OTPBOT_ variables, plus extra.
func baseEnv(extra map[string]string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// syncBuffer is a goroutine-safe writer tests can search.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func waitUntil(t *testing.T, what string, logs *syncBuffer, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; otpbot's log:\n%s", waitDeadline, what, logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// asRun turns a README shell block into the script the test runs: the
// clone's `go run ./cmd/otpbot` becomes the binary built from it.
func asRun(t *testing.T, block, bin string) string {
	t.Helper()
	if !strings.Contains(block, "go run ./cmd/otpbot ") {
		t.Fatalf("the walk-through block does not run otpbot with go run ./cmd/otpbot:\n%s", block)
	}
	return "set -e\n" + strings.ReplaceAll(block, "go run ./cmd/otpbot ", "'"+bin+"' ")
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestReadmeWalkthrough follows "Your first code" as a new operator would,
// on a fresh working directory: the quick-start command (with the admin id
// the README exports in front) against a fake Telegram, the README's
// `/link card` from that admin in a private chat, the README's
// `otpbot sign ... | sh`, and the code arriving in the chat. Only what a
// test cannot have is substituted: Telegram's address
// (OTPBOT_TELEGRAM_API_ENDPOINT, the fake Bot API) and a free port for
// http.listen (OTPBOT_HTTP_LISTEN), given to both terminals alike.
func TestReadmeWalkthrough(t *testing.T) {
	r := loadReadme(t)
	bin := otpbotBinary(t)
	runCmd, _ := quickStart(t, r)

	const section = "Your first code"
	var serveBlock, signBlock string
	for _, b := range r.sectionBlocks(section, "sh") {
		switch {
		case strings.Contains(b.body, "otpbot serve"):
			serveBlock = b.body
		case strings.Contains(b.body, "otpbot sign"):
			signBlock = b.body
		}
	}
	if serveBlock == "" || signBlock == "" {
		t.Fatalf("the %q section lacks the block that runs the bot or the one that signs a push", section)
	}
	if !strings.Contains(serveBlock, "\n"+runCmd+"\n") {
		t.Errorf("the walk-through does not run the quick-start command %q", runCmd)
	}
	m := regexp.MustCompile(`(?m)^export OTPBOT_TELEGRAM_ADMINS=(\d+)$`).FindStringSubmatch(serveBlock)
	if m == nil {
		t.Fatal("the walk-through does not make the operator an admin (export OTPBOT_TELEGRAM_ADMINS=ID)")
	}
	var admin int64
	fmt.Sscan(m[1], &admin)
	var link string
	for _, s := range r.spans {
		if s.section == section && strings.HasPrefix(s.text, "/link card ") {
			link = s.text
		}
	}
	if link == "" {
		t.Fatal("the walk-through does not say which /link card command to send")
	}
	card := strings.TrimPrefix(link, "/link card ")
	signLine := regexp.MustCompile(`(?m)^.*otpbot sign .*\| sh$`).FindString(signBlock)
	if signLine == "" {
		t.Fatal("the walk-through does not pipe `otpbot sign` into sh")
	}
	if !strings.Contains(signLine, " -card "+card+" ") {
		t.Errorf("the signed push is not for the card the walk-through links (%s): %s", card, signLine)
	}
	cm := regexp.MustCompile(` -code (\d+)`).FindStringSubmatch(signLine)
	if cm == nil {
		t.Fatal("the walk-through's sign command does not choose the code (-code)")
	}
	code := cm[1]
	prose := strings.Join(strings.Fields(r.prose[section]), " ")
	reply := regexp.MustCompile(`answers "([^"]+)"`).FindStringSubmatch(prose)
	if reply == nil {
		t.Fatal("the walk-through does not say what the bot answers to /link")
	}

	// A fresh machine: an empty working directory holding what the clone
	// gives (the example configuration), a fake Telegram, a free port.
	fake := bottest.New(t)
	work := t.TempDir()
	example, err := os.ReadFile(filepath.Join(repoRoot, "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "config.example.yaml"), example, 0o644); err != nil {
		t.Fatal(err)
	}
	listen := freePort(t)
	env := baseEnv(map[string]string{
		"OTPBOT_TELEGRAM_API_ENDPOINT": fake.Endpoint(),
		"OTPBOT_HTTP_LISTEN":           listen,
	})

	// Terminal 1: the bot.
	logs := &syncBuffer{}
	serve := exec.Command("sh", "-c", asRun(t, serveBlock, bin))
	serve.Dir, serve.Env, serve.Stdout, serve.Stderr = work, env, logs, logs
	serve.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the shell and otpbot, stopped together
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = serve.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-serve.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(waitDeadline):
			_ = syscall.Kill(-serve.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("otpbot's log:\n%s", logs)
		}
	})
	running := func() bool {
		select {
		case <-exited:
			t.Fatalf("otpbot serve exited:\n%s", logs)
		default:
		}
		return true
	}
	waitUntil(t, "otpbot to listen and connect to Telegram", logs, func() bool {
		return running() && strings.Contains(logs.String(), "msg=listening addr="+listen) &&
			strings.Contains(logs.String(), `msg="telegram connected"`)
	})

	// Telegram: the admin links the card in the private chat with the bot
	// (a private chat's id is the user's id).
	chat := admin
	fake.SendCommand(chat, admin, link)
	waitUntil(t, "the answer to "+link, logs, func() bool {
		for _, msg := range fake.Messages(chat) {
			if strings.Contains(msg.Plain(), "Linked") {
				if msg.Plain() != reply[1] {
					t.Errorf("the bot answered %q to %s; the README says %q", msg.Plain(), link, reply[1])
				}
				return true
			}
		}
		return running() && false
	})

	// Terminal 2: the signed push, run by the shell as printed.
	sign := exec.Command("sh", "-c", asRun(t, signBlock, bin))
	sign.Dir, sign.Env = work, env
	var signErr bytes.Buffer
	sign.Stderr = &signErr
	out, err := sign.Output()
	if err != nil {
		t.Fatalf("the README's sign | sh failed: %v\nstdout: %s\nstderr: %s", err, out, signErr.String())
	}
	if strings.TrimSpace(string(out)) != "SUCCESS" {
		t.Fatalf("curl printed %q, the README says SUCCESS (UPay's acknowledgement)\nsign's stderr: %s", out, signErr.String())
	}

	// The code arrives in the chat, with its card masked and a countdown.
	var got bottest.Message
	waitUntil(t, "the code in the chat", logs, func() bool {
		for _, msg := range fake.Messages(chat) {
			if strings.Contains(msg.Plain(), code) {
				got = msg
				return true
			}
		}
		return running() && false
	})
	for _, want := range []string{code, "•••• 1234", "expires in"} {
		if !strings.Contains(got.Plain(), want) {
			t.Errorf("the code message lacks %q:\n%s", want, got.Plain())
		}
	}
	// The log lines the walk-through tells the operator to expect, each
	// fragment between the README's "…" as printed (the address is the
	// test's).
	var quoted []string
	for _, s := range r.spans {
		if s.section != section || !strings.Contains(s.text, "msg=") {
			continue
		}
		for _, f := range strings.Split(s.text, "…") {
			if f = strings.TrimSpace(f); f != "" {
				quoted = append(quoted, strings.ReplaceAll(f, "127.0.0.1:8080", listen))
			}
		}
	}
	if len(quoted) < 3 {
		t.Errorf("the walk-through quotes %d log fragments; it should show what otpbot logs at start, per push and per delivery", len(quoted))
	}
	for _, want := range quoted {
		waitUntil(t, "the log line the README quotes: "+want, logs, func() bool {
			return strings.Contains(logs.String(), want)
		})
	}
	if strings.Contains(logs.String(), code) {
		t.Errorf("otpbot's log shows the code")
	}
	// The embedded store is where the quick start says: the working directory.
	if _, err := os.Stat(filepath.Join(work, "otpbot.db")); err != nil {
		t.Errorf("the embedded store is not in the working directory: %v", err)
	}
}
