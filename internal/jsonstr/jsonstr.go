// Package jsonstr unescapes JSON string bodies without allocating: the
// record scanner (internal/jsonscan) for escaped field names, and
// schemas.AppendText for every string value with an escape in it (a
// product's description with a line break), which went through
// encoding/json before.
package jsonstr

import (
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrEscape is returned for a string body with an escape JSON does not
// have, or cut short.
var ErrEscape = errors.New("invalid escape in string")

// Unescape appends the text of the string body b (what is between the
// quotes) to dst. A \u escape of a lone surrogate becomes U+FFFD, as in
// encoding/json. A malformed escape is ErrEscape, with dst as it was.
func Unescape(dst, b []byte) ([]byte, error) {
	start := len(dst)
	for i := 0; i < len(b); {
		c := b[i]
		if c != '\\' {
			j := i + 1
			for j < len(b) && b[j] != '\\' {
				j++
			}
			dst = append(dst, b[i:j]...)
			i = j
			continue
		}
		if i+1 >= len(b) {
			return dst[:start], ErrEscape
		}
		switch e := b[i+1]; e {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case '"', '\\', '/':
			dst = append(dst, e)
		case 'u':
			r, ok := hex4(b[i+2:])
			if !ok {
				return dst[:start], ErrEscape
			}
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(b) && b[i] == '\\' && b[i+1] == 'u' {
					r2, _ = hex4(b[i+2:])
				}
				if p := utf16.DecodeRune(r, r2); p != utf8.RuneError {
					r = p
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return dst[:start], ErrEscape
		}
		i += 2
	}
	return dst, nil
}

// hex4 reads the four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
