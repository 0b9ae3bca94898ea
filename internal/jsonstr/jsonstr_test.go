package jsonstr

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// Every valid string body unescapes as encoding/json reads it; a malformed
// one is an error, never a panic.
func FuzzUnescape(f *testing.F) {
	for _, s := range []string{`plain`, `a\nb`, `\"q\"`, `\\`, `\/`, `\u00e9`, `\ud83d\ude00`, `\ud83d`, `\ud83dx`, `\u12`, `\x`, `\`, `tab\tend`, `\b\f\r`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := Unescape([]byte("keep:"), body)
		var want string
		jerr := json.Unmarshal(append(append([]byte{'"'}, body...), '"'), &want)
		switch {
		case jerr == nil && err != nil:
			t.Fatalf("%q: %v, encoding/json reads %q", body, err, want)
		case jerr == nil && utf8.Valid(body) && string(got) != "keep:"+want:
			// encoding/json replaces invalid UTF-8; the scanner rejects it
			// before, so only valid bodies must agree byte for byte.
			t.Fatalf("%q: %q, encoding/json reads %q", body, got, want)
		case err != nil && string(got) != "keep:":
			t.Fatalf("%q: an error left %q in dst", body, got)
		}
	})
}
