package cli

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// tsvEscaper escapes a value the way ClickHouse's TabSeparated format does,
// so that one row stays one line.
var tsvEscaper = strings.NewReplacer("\\", "\\\\", "\t", "\\t", "\n", "\\n", "\r", "\\r")

// WriteTSV writes a header line and the rows, tab-separated, escaped as
// ClickHouse's TabSeparatedWithNames does.
func WriteTSV(w io.Writer, header []string, rows [][]string) error {
	for _, r := range append([][]string{header}, rows...) {
		if err := WriteTSVRow(w, r); err != nil {
			return err
		}
	}
	return nil
}

// WriteTSVRow writes one line of WriteTSV: the header or a row. Written
// row by row (through a bufio.Writer), a result of any size streams.
func WriteTSVRow(w io.Writer, r []string) error {
	for i, v := range r {
		if i > 0 {
			if _, err := io.WriteString(w, "\t"); err != nil {
				return err
			}
		}
		if _, err := io.WriteString(w, tsvEscaper.Replace(v)); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// WriteTable writes the rows as an aligned table for a person: a header,
// a rule, one line per row (line breaks in values shown as \n, long values
// cut at maxWidth), and the row count.
func WriteTable(w io.Writer, header []string, rows [][]string, maxWidth int) error {
	note := fmt.Sprintf("(%s rows)", Count(int64(len(rows))))
	if len(rows) == 1 {
		note = "(1 row)"
	}
	return WriteTableNote(w, header, rows, maxWidth, note)
}

// WriteTableNote is WriteTable with note as its last line instead of the
// row count: for the first rows of a result, say.
func WriteTableNote(w io.Writer, header []string, rows [][]string, maxWidth int, note string) error {
	cells := make([][]string, 0, len(rows)+1)
	for _, r := range append([][]string{header}, rows...) {
		line := make([]string, len(r))
		for i, v := range r {
			v = tsvEscaper.Replace(v)
			if utf8.RuneCountInString(v) > maxWidth {
				v = string([]rune(v)[:maxWidth-1]) + "…"
			}
			line[i] = v
		}
		cells = append(cells, line)
	}
	width := make([]int, len(header))
	for _, r := range cells {
		for i, v := range r {
			width[i] = max(width[i], utf8.RuneCountInString(v))
		}
	}
	var b strings.Builder
	for n, r := range cells {
		for i, v := range r {
			if i > 0 {
				b.WriteString("  ")
			}
			b.WriteString(v)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(v)))
			}
		}
		b.WriteByte('\n')
		if n == 0 {
			for i, wd := range width {
				if i > 0 {
					b.WriteString("  ")
				}
				b.WriteString(strings.Repeat("-", wd))
			}
			b.WriteByte('\n')
		}
	}
	b.WriteString(note + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}
