package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// Code comments cite the documentation by page and section
// ("docs/upay.md#3ds_otp"), and the pages link to each other and to the
// README's sections. TestDocLinksResolve keeps every such reference
// pointing at a page that exists and a heading it has, so renaming a
// heading cannot silently strand a comment.

// docRefRE is a reference to a page of docs/ from anywhere in the
// repository: a comment, a unit file, the README.
var docRefRE = regexp.MustCompile(`\bdocs/([A-Za-z0-9_-]+\.md)(#[A-Za-z0-9_-]+)?`)

// mdLinkRE is a Markdown link's target: ](target).
var mdLinkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// headingRE is an ATX heading outside code blocks.
var headingRE = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)

// anchorsOf returns the anchors GitHub gives the headings of a Markdown
// file: lower case, punctuation other than - and _ dropped, spaces turned
// into -, a repeated anchor numbered -1, -2...
func anchorsOf(t *testing.T, path string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	seen := map[string]int{}
	fence := ""
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			switch {
			case fence == "":
				fence = trimmed[:3]
			case strings.HasPrefix(trimmed, fence):
				fence = ""
			}
			continue
		}
		m := headingRE.FindStringSubmatch(line)
		if fence != "" || m == nil {
			continue
		}
		slug := slugOf(m[1])
		if n := seen[slug]; n > 0 {
			anchors[slug+"-"+strconv.Itoa(n)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors
}

// slugOf is GitHub's anchor of a heading's text.
func slugOf(heading string) string {
	// A link in a heading contributes its text only.
	heading = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestSlugOf pins the anchor rule on headings the pages use.
func TestSlugOf(t *testing.T) {
	for heading, want := range map[string]string{
		"3DS_OTP":                                      "3ds_otp",
		"Card transactions":                            "card-transactions",
		"Testing a deployment: `otpbot sign`":          "testing-a-deployment-otpbot-sign",
		"No message arrives: the five things to check": "no-message-arrives-the-five-things-to-check",
		"Approving HyperCard purchases from Telegram":  "approving-hypercard-purchases-from-telegram",
	} {
		if got := slugOf(heading); got != want {
			t.Errorf("slugOf(%q) = %q, want %q", heading, got, want)
		}
	}
}

func TestDocLinksResolve(t *testing.T) {
	anchors := map[string]map[string]bool{} // by clean path
	anchorsFor := func(path string) map[string]bool {
		path = filepath.Clean(path)
		if anchors[path] == nil {
			anchors[path] = anchorsOf(t, path)
		}
		return anchors[path]
	}
	check := func(where, target, anchor string) {
		name, _ := filepath.Rel(repoRoot, target)
		if _, err := os.Stat(target); err != nil {
			t.Errorf("%s: %s does not exist", where, name)
			return
		}
		if anchor != "" && strings.HasSuffix(target, ".md") && !anchorsFor(target)[anchor] {
			t.Errorf("%s: %s has no heading with the anchor #%s", where, name, anchor)
		}
	}
	checked := 0
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != repoRoot && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".md", ".yaml", ".service", ".tmpl":
		default:
			if d.Name() != "Makefile" && d.Name() != "Dockerfile" {
				return nil
			}
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		for i, line := range strings.Split(string(data), "\n") {
			where := rel + ":" + strconv.Itoa(i+1)
			for _, m := range docRefRE.FindAllStringSubmatch(line, -1) {
				check(where, filepath.Join(repoRoot, "docs", m[1]), strings.TrimPrefix(m[2], "#"))
				checked++
			}
			if filepath.Ext(path) != ".md" {
				continue
			}
			for _, m := range mdLinkRE.FindAllStringSubmatch(line, -1) {
				target, anchor, _ := strings.Cut(m[1], "#")
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				if target == "" {
					target = path
				} else {
					target = filepath.Join(filepath.Dir(path), target)
				}
				check(where, target, anchor)
				checked++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Errorf("only %d references to the documentation found; the scan is broken", checked)
	}
}
