package clickhouse

import (
	"fmt"
	"strings"

	"skuflow/config"
	"skuflow/schemas"
)

// identEscaper escapes what ends or escapes a back-quoted identifier.
var identEscaper = strings.NewReplacer(`\`, `\\`, "`", "\\`")

// Ident returns name quoted as a ClickHouse identifier: in backticks, with
// backslashes and backticks escaped. Every database, table, view and
// column name skuflow puts into SQL goes through it (or Table), so a name
// cannot end the identifier and add SQL, whatever checks it passed.
func Ident(name string) string {
	return "`" + identEscaper.Replace(name) + "`"
}

// Table returns the qualified name db.name, both parts quoted by Ident.
func Table(db, name string) string { return Ident(db) + "." + Ident(name) }

// CheckNames refuses a schema whose table, view or column names are not
// plain identifiers (config.CheckIdentifier), before they reach SQL.
func CheckNames(s *schemas.Schema) error {
	names := append(s.Names(), s.Extra)
	for _, c := range s.Columns {
		names = append(names, c.Name)
	}
	for _, a := range s.Aggregates {
		names = append(names, a.As)
	}
	for _, n := range names {
		if err := config.CheckIdentifier(n); err != nil {
			return fmt.Errorf("schema %q: %w", s.Name, err)
		}
	}
	return nil
}
