package templates

import (
	"fmt"
	"html"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/otpbot/otpbot"
)

// refToken, refScan, refTruncate and refStripTags are the former
// implementation, which split every text into one token per character on
// every render. They stay here as the reference the one-pass code must
// match, output and errors alike.
type refToken struct {
	raw   string
	tag   string
	close bool
	width int
}

func refScan(s string) ([]refToken, error) {
	var toks []refToken
	for i := 0; i < len(s); {
		switch s[i] {
		case '<':
			end := strings.IndexByte(s[i:], '>')
			if end < 0 {
				return nil, fmt.Errorf("unterminated tag at byte %d", i)
			}
			raw := s[i : i+end+1]
			name := strings.TrimPrefix(raw[1:len(raw)-1], "/")
			if j := strings.IndexAny(name, " \t\n"); j >= 0 {
				name = name[:j]
			}
			name = strings.ToLower(name)
			if !telegramTags[name] {
				return nil, fmt.Errorf("tag <%s> is not supported by Telegram", name)
			}
			toks = append(toks, refToken{raw: raw, tag: name, close: raw[1] == '/'})
			i += end + 1
		case '&':
			end := strings.IndexByte(s[i:], ';')
			if end < 0 || end > 12 {
				return nil, fmt.Errorf("unterminated entity at byte %d", i)
			}
			raw := s[i : i+end+1]
			toks = append(toks, refToken{raw: raw, width: utf16Len(html.UnescapeString(raw))})
			i += end + 1
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			toks = append(toks, refToken{raw: s[i : i+size], width: utf16.RuneLen(r)})
			i += size
		}
	}
	return toks, nil
}

func refTruncate(s string, max int) (string, error) {
	toks, err := refScan(s)
	if err != nil {
		return "", err
	}
	total := 0
	for _, t := range toks {
		total += t.width
	}
	if total <= max {
		return s, nil
	}
	budget := max - utf16Len(ellipsis)
	var b strings.Builder
	var open []string
	used := 0
	for _, t := range toks {
		if t.width > 0 && used+t.width > budget {
			break
		}
		used += t.width
		b.WriteString(t.raw)
		switch {
		case t.tag == "":
		case t.close:
			if n := len(open); n > 0 && open[n-1] == t.tag {
				open = open[:n-1]
			}
		default:
			open = append(open, t.tag)
		}
	}
	b.WriteString(ellipsis)
	for i := len(open) - 1; i >= 0; i-- {
		b.WriteString("</" + open[i] + ">")
	}
	return b.String(), nil
}

func refStripTags(s string) string {
	toks, err := refScan(s)
	if err != nil {
		return s
	}
	var b strings.Builder
	for _, t := range toks {
		if t.tag == "" {
			b.WriteString(t.raw)
		}
	}
	return b.String()
}

// cutInputs are texts of every shape Truncate meets: plain and astral
// characters, entities common and rare, nested and unclosed tags, links,
// and the malformed ones it must refuse.
func cutInputs() []string {
	in := []string{
		"", "a", "abcde", "<b>hi</b>", "<b>bold <i>italic text</i></b>",
		"a&amp;b&lt;c", "&lt;&lt;&lt;", "&#39;&#34;&quot;&gt;", "&eacute;t&eacute; &#128512; &#x1F600; &nbsp;",
		`<a href="https://x.io/?a=1&amp;b=2">link text</a>`, "😀😀😀", "€uro ✓ 😀 ok",
		"<B>upper</B> <Code>x</Code>", "<pre>\tcode\n</pre><blockquote>q</blockquote>",
		"<tg-spoiler>s</tg-spoiler><span class=\"tg-spoiler\">t</span>",
		"unclosed <b>bold <i>and italic", "stray </b> close", "\xff\xfe invalid utf-8 \xc3",
		// Refused: unknown tag, unterminated tag and entities.
		"<div>x</div>", "a < b", "a & b", "&averyveryverylong;", "<b>ok</b><script>",
	}
	r := rand.New(rand.NewPCG(1, 2))
	parts := []string{"a", "Z", " ", "\n", "é", "€", "😀", "&amp;", "&lt;", "&#39;", "&eacute;", "&#128512;",
		"<b>", "</b>", "<i>", "</i>", `<a href="https://e.x/?q=1&amp;r=2">`, "</a>", "<code>", "</code>", "\xff"}
	for range 200 {
		var b strings.Builder
		for range r.IntN(60) {
			b.WriteString(parts[r.IntN(len(parts))])
		}
		in = append(in, b.String())
	}
	return in
}

// TestTruncateMatchesReference: the one-pass Truncate, VisibleLen and
// stripTags give exactly what the token-based code gave, for every limit
// from 0 to past the text's length.
func TestTruncateMatchesReference(t *testing.T) {
	for _, in := range cutInputs() {
		wantLen, wantErr := refVisibleLen(in)
		gotLen, gotErr := VisibleLen(in)
		if gotLen != wantLen || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Errorf("VisibleLen(%q) = %d, %v; reference %d, %v", in, gotLen, gotErr, wantLen, wantErr)
		}
		if got, want := stripTags(in), refStripTags(in); got != want {
			t.Errorf("stripTags(%q) = %q; reference %q", in, got, want)
		}
		for max := 0; max <= wantLen+2; max++ {
			got, err := Truncate(in, max)
			want, refErr := refTruncate(in, max)
			if got != want || fmt.Sprint(err) != fmt.Sprint(refErr) {
				t.Fatalf("Truncate(%q, %d) = %q, %v; reference %q, %v", in, max, got, err, want, refErr)
			}
		}
	}
}

// refVisibleLen is VisibleLen by the reference tokeniser.
func refVisibleLen(s string) (int, error) {
	toks, err := refScan(s)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range toks {
		n += t.width
	}
	return n, nil
}

// TestTruncateFitsWithoutAllocating: a text that needs no cut is returned as it
// is, without allocating: the render of every send and countdown edit
// pays one pass over its text, not a token per character.
func TestTruncateFitsWithoutAllocating(t *testing.T) {
	s := mustNew(t, "")
	text, err := s.RenderMessage(otpbot.Message{Event: otp(), State: otpbot.StateLive}, t0)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if out, err := Truncate(text, MaxLen); err != nil || out != text {
			t.Fatalf("Truncate changed a text that fits: %q, %v", out, err)
		}
	})
	if allocs != 0 {
		t.Errorf("Truncate of a text that fits allocates %v times per call, want 0", allocs)
	}
}

// BenchmarkRenderMessage is one render as every send and countdown edit
// does: a live code, far below MaxLen, so nothing is cut.
//
//	go test ./templates -run '^$' -bench 'RenderMessage|Truncate' -benchmem
func BenchmarkRenderMessage(b *testing.B) {
	s, err := New("")
	if err != nil {
		b.Fatal(err)
	}
	msg := otpbot.Message{Event: otp(), State: otpbot.StateLive}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.RenderMessage(msg, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTruncate cuts (or not) a rendered text to MaxLen.
func BenchmarkTruncate(b *testing.B) {
	s, err := New("")
	if err != nil {
		b.Fatal(err)
	}
	short, err := s.RenderMessage(otpbot.Message{Event: otp(), State: otpbot.StateLive}, t0)
	if err != nil {
		b.Fatal(err)
	}
	long := strings.Repeat("<b>A&amp;B</b> text €😀 ", 600) // about 9,000 visible units
	for _, bc := range []struct{ name, in string }{{"fits", short}, {"cut", long}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Truncate(bc.in, MaxLen); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
