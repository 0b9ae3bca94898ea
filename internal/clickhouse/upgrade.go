package clickhouse

import (
	"context"
	"fmt"
	"strings"

	"skuflow/schemas"
)

// upgradeVersion rebuilds a records table that an earlier release created
// with `ReplacingMergeTree(_offset)`: an engine's version column cannot be
// changed in place. The table is renamed aside, created again with
// _version, filled from the old one (an old row's version is its offset,
// incarnation 0, below every version written from now on), and the old
// table dropped once the new one holds as many rows.
func upgradeVersion(ctx context.Context, conn Conn, db string, s *schemas.Schema) error {
	var create string
	q := fmt.Sprintf("SELECT create_table_query FROM system.tables WHERE database = %s AND name = %s", Quote(db), Quote(s.Name))
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return fmt.Errorf("migrate: read the definition of %s.%s: %w", db, s.Name, err)
	}
	found := rows.Next()
	if found {
		err = rows.Scan(&create)
	}
	rows.Close()
	if err != nil {
		return fmt.Errorf("migrate: read the definition of %s.%s: %w", db, s.Name, err)
	}
	if !found || !strings.Contains(create, "ReplacingMergeTree(_offset)") {
		return nil
	}
	aside := s.Name + "_before_version"
	have, err := columns(ctx, conn, db, s.Name)
	if err != nil {
		return err
	}
	var cols []string
	for _, c := range recordColumns(s) {
		if _, ok := have[c[0]]; ok {
			cols = append(cols, Ident(c[0]))
		}
	}
	list := strings.Join(cols, ", ")
	steps := []string{
		fmt.Sprintf("RENAME TABLE %s TO %s", Table(db, s.Name), Table(db, aside)),
		s.DDL(Ident(db))[1],
		fmt.Sprintf("INSERT INTO %s (%s, _version) SELECT %s, _offset FROM %s", Table(db, s.Name), list, list, Table(db, aside)),
	}
	for i, stmt := range steps {
		if err := conn.Exec(ctx, stmt); err != nil {
			if i == 0 {
				// Another service renamed it first: the rebuild is its.
				if again, rerr := tableQuery(ctx, conn, q); rerr == nil && !strings.Contains(again, "ReplacingMergeTree(_offset)") {
					return nil
				}
			}
			return fmt.Errorf("migrate: rebuild %s.%s with the _version column: %s: %w", db, s.Name, firstLine(stmt), err)
		}
	}
	var before, after uint64
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT (SELECT count() FROM %s), (SELECT count() FROM %s)", Table(db, aside), Table(db, s.Name))).Scan(&before, &after); err != nil {
		return fmt.Errorf("migrate: count the rebuilt %s.%s: %w", db, s.Name, err)
	}
	if before != after {
		return fmt.Errorf("migrate: rebuilt %s.%s has %d rows, the old table %s %d; the old table is kept", db, s.Name, after, aside, before)
	}
	return conn.Exec(ctx, "DROP TABLE "+Table(db, aside))
}

// tableQuery returns the create_table_query that q selects, or "".
func tableQuery(ctx context.Context, conn Conn, q string) (string, error) {
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var create string
	if rows.Next() {
		err = rows.Scan(&create)
	}
	return create, err
}
