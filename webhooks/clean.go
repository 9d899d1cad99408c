package webhooks

import (
	"strings"
	"unicode/utf8"
)

// cleanText makes a provider string safe to render, log and store on one
// line. Every value of a push passes through it as it is decoded (Scalar),
// so no other code has to remember to.
//
//   - Line and tab controls (\t \n \v \f \r, NEL, U+2028, U+2029) become
//     one space, so that words stay apart but a field cannot start a new
//     line that poses as another field of the message.
//   - Every other control character (C0, DEL, C1: BEL, ESC...) is removed.
//   - Bidirectional formatting characters are removed: the marks U+200E,
//     U+200F and U+061C, the embeddings and overrides U+202A–U+202E and the
//     isolates U+2066–U+2069. A RIGHT-TO-LEFT OVERRIDE in a merchant name
//     would otherwise reverse what follows it on screen and make "Amazon"
//     or an amount read as something else.
//
// Other characters, joiners included (emoji and several scripts need
// them), are kept.
func cleanText(s string) string {
	i := 0
	for i < len(s) {
		c := s[i]
		if c >= 0x80 {
			r, size := utf8.DecodeRuneInString(s[i:])
			if unsafeRune(r) {
				break
			}
			i += size
			continue
		}
		if c < 0x20 || c == 0x7f {
			break
		}
		i++
	}
	if i == len(s) {
		return s // the common case: nothing to change, nothing allocated
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for _, r := range s[i:] {
		switch {
		case lineBreaking(r):
			if !strings.HasSuffix(b.String(), " ") {
				b.WriteByte(' ')
			}
		case unsafeRune(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// lineBreaking reports whether r moves to a new line or column: it is
// replaced by a space.
func lineBreaking(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', 0x85, 0x2028, 0x2029:
		return true
	}
	return false
}

// unsafeRune reports whether cleanText removes (or, lineBreaking, replaces)
// r: a control or bidirectional formatting character.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f: // C0, DEL, C1
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f: // ALM, LRM, RLM
		return true
	case r >= 0x202a && r <= 0x202e: // LRE, RLE, PDF, LRO, RLO
		return true
	case r >= 0x2066 && r <= 0x2069: // LRI, RLI, FSI, PDI
		return true
	case r == 0x2028, r == 0x2029: // line and paragraph separators
		return true
	}
	return false
}
