package logs

import "strings"

// MaskCardNumbers replaces every run of 12 to 19 digits in s (single spaces
// or dashes between digit groups allowed, as card numbers are written) with
// "•••• " and its last four digits, the one card mask of logs and
// messages. Longer or shorter runs are left alone: they are ids, amounts or
// timestamps, not card numbers; so is a negative number (a supergroup's
// chat id, "-1001234567890"), since no card number is written with a
// minus sign.
func MaskCardNumbers(s string) string {
	if !hasLongDigitRun(s) {
		return s
	}
	var b strings.Builder
	i := 0
	for i < len(s) {
		if !isDigit(s[i]) || (i > 0 && isDigit(s[i-1])) {
			b.WriteByte(s[i])
			i++
			continue
		}
		end := -1
		if !negative(s, i) {
			end = cardRunEnd(s, i)
		}
		if end < 0 {
			// Not a card number: copy this group of digits as it is.
			k := i
			for k < len(s) && isDigit(s[k]) {
				k++
			}
			b.WriteString(s[i:k])
			i = k
			continue
		}
		b.WriteString("•••• ")
		b.WriteString(lastDigits(s[i:end], 4))
		i = end
	}
	return b.String()
}

// negative reports whether the digits at i follow a minus sign: a "-" at
// the start of s or after anything but a word ("chat -100…", "id=-100…",
// `"chat_id":-100…`), not a hyphen within a word or between digit groups
// ("card-4111…", "4111-1111-…").
func negative(s string, i int) bool {
	if i == 0 || s[i-1] != '-' {
		return false
	}
	if i == 1 {
		return true
	}
	c := s[i-2]
	word := c >= 0x80 || c == '-' || c == '_' || c == '.' || isDigit(c) ||
		(c|0x20 >= 'a' && c|0x20 <= 'z')
	return !word
}

// cardRunEnd returns where the card number starting at i ends, or -1 when
// none starts there. A contiguous group of 12-19 digits is one; a shorter
// group is joined with the groups after it (one space or dash apart) and the
// longest join of 12-19 digits wins, so "4111 1111 1111 1111 2024" masks
// the card and keeps the year.
func cardRunEnd(s string, i int) int {
	k := i
	for k < len(s) && isDigit(s[k]) {
		k++
	}
	n := k - i
	if n >= 12 && n <= 19 {
		return k
	}
	if n > 19 {
		return -1
	}
	best, digits := -1, n
	for k+1 < len(s) && (s[k] == ' ' || s[k] == '-') && isDigit(s[k+1]) {
		j := k + 1
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		digits += j - (k + 1)
		if digits > 19 {
			break
		}
		if digits >= 12 {
			best = j
		}
		k = j
	}
	return best
}

func hasLongDigitRun(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			n++
			if n >= 12 {
				return true
			}
		} else if s[i] != ' ' && s[i] != '-' {
			n = 0
		}
	}
	return false
}

func lastDigits(s string, n int) string {
	out := make([]byte, 0, n)
	for i := len(s) - 1; i >= 0 && len(out) < n; i-- {
		if isDigit(s[i]) {
			out = append(out, s[i])
		}
	}
	for l, r := 0, len(out)-1; l < r; l, r = l+1, r-1 {
		out[l], out[r] = out[r], out[l]
	}
	return string(out)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
