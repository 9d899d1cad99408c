package bot

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// Every word a chat sees comes from the templates, in the chat's
// language: this scans the packages that send to Telegram (bot,
// bot/deliver, bot/telegram) for string literals that look like something
// a person reads — a sentence ("Code hidden."), an emoji ("📋 Copy
// code"), markup ("<b>") — outside the few places allowed below. Log messages, error
// texts and metric help are for operators and are not flagged (they start
// in lower case, or are a metric's Help).
func TestNoUserVisibleStringsInGoCode(t *testing.T) {
	// allowed are functions that may hold such text, with why.
	allowed := map[string]string{
		// Ops without templates (logs-only setups, tests), or with one
		// that failed, still reports: these are its last-resort texts.
		"deliver/ops.go:plain":   "built-in ops text without templates",
		"deliver/ops.go:compose": "built-in ops text without templates",
		"deliver/ops.go:section": "built-in ops text without templates",
	}
	var files []string
	for _, dir := range []string{".", "deliver", "telegram"} {
		matches, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range matches {
			if !strings.HasSuffix(m, "_test.go") {
				files = append(files, m)
			}
		}
	}
	if len(files) < 20 {
		t.Fatalf("scanned only %d files: %v", len(files), files)
	}
	fset := token.NewFileSet()
	for _, path := range files {
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if ok && allowed[filepath.ToSlash(path)+":"+fn.Name.Name] != "" {
				continue
			}
			for _, lit := range userVisible(decl) {
				t.Errorf("%s: %s looks like text a chat shows: make it a template (templates/builtin)", fset.Position(lit.Pos()), lit.Value)
			}
		}
	}
}

// userVisible returns the string literals in node that look like text for
// a person, leaving out metric help and the messages of logs and errors.
func userVisible(node ast.Node) []*ast.BasicLit {
	var out []*ast.BasicLit
	skip := map[*ast.BasicLit]bool{}
	ast.Inspect(node, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.KeyValueExpr:
			if id, ok := n.Key.(*ast.Ident); ok && id.Name == "Help" {
				if lit, ok := n.Value.(*ast.BasicLit); ok {
					skip[lit] = true
				}
			}
		case *ast.BasicLit:
			if n.Kind != token.STRING || skip[n] {
				return true
			}
			s, err := strconv.Unquote(n.Value)
			if err == nil && looksLikeText(s) {
				out = append(out, n)
			}
		}
		return true
	})
	return out
}

// looksLikeText reports whether s reads like something shown to a person:
// an emoji or other pictograph, Telegram markup, or a sentence (a
// capitalised word of letters, then at least one more word).
func looksLikeText(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.So, r) || (r >= 0x1F000 && r <= 0x1FAFF) {
			return true
		}
	}
	if strings.Contains(s, "<b>") || strings.Contains(s, "<i>") || strings.Contains(s, "<code>") {
		return true
	}
	words := strings.Fields(s)
	if len(words) < 2 {
		return false
	}
	first := []rune(words[0])
	if len(first) < 2 || !unicode.IsUpper(first[0]) || !unicode.IsLower(first[1]) {
		return false
	}
	for _, r := range strings.TrimRight(words[0], ",:") {
		if !unicode.IsLetter(r) {
			return false
		}
	}
	return true
}

func TestLooksLikeText(t *testing.T) {
	for s, want := range map[string]bool{
		"Code hidden.": true, "✅ Used it — hide": true, "📋 Copy": true, "Sorry, you can't use this command here.": true,
		"<b>Rejected</b>": true, "Already answered: ": true,
		"command refused": false, "approval answered": false, "hide": false, "HTTP %d": false,
		"Bot commands and button presses handled": true, // caught unless it is a metric's Help
		"card:": false, "%s (id %d)": false, "Bearer": false,
	} {
		if got := looksLikeText(s); got != want {
			t.Errorf("looksLikeText(%q) = %v, want %v", s, got, want)
		}
	}
}
