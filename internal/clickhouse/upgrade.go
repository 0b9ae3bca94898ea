package clickhouse

import (
	"context"
	"fmt"
	"strings"

	"skuflow/schemas"
)

// upgradeVersion rebuilds a records table that an earlier release created
// with `ReplacingMergeTree(_offset)`: an engine's version column cannot be
// changed in place. The table is renamed aside (to <name>_before_version),
// created again with _version, filled from the old one (an old row's
// version is its offset, incarnation 0, below every version written from
// now on), and the old table dropped once the new one holds every key of
// it. A rebuild that was cut short (a timeout, a crash, a restart of
// ClickHouse) is taken up again by the next migration, whichever service
// runs it: the table aside is what says a rebuild is not finished, and
// copying again is harmless (the same rows and versions, collapsed by
// FINAL).
func upgradeVersion(ctx context.Context, conn Conn, db string, s *schemas.Schema) error {
	return upgradeVersionTry(ctx, conn, db, s, 0)
}

func upgradeVersionTry(ctx context.Context, conn Conn, db string, s *schemas.Schema, tries int) error {
	aside := s.Name + "_before_version"
	q := fmt.Sprintf("SELECT name, create_table_query FROM system.tables WHERE database = %s AND name IN (%s, %s)",
		Quote(db), Quote(s.Name), Quote(aside))
	var defs map[string]string
	err := readTables(ctx, func() error {
		defs = map[string]string{}
		rows, err := conn.Query(ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name, create string
			if err := rows.Scan(&name, &create); err != nil {
				return err
			}
			defs[name] = create
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("migrate: read the definition of %s.%s: %w", db, s.Name, err)
	}
	current, hasCurrent := defs[s.Name]
	_, hasAside := defs[aside]
	switch {
	case hasCurrent && strings.Contains(current, "ReplacingMergeTree(_offset)"):
		if err := conn.Exec(ctx, fmt.Sprintf("RENAME TABLE %s TO %s", Table(db, s.Name), Table(db, aside))); err != nil {
			// Another service renamed it first: take up its rebuild, or,
			// if it has finished it meanwhile (the table aside gone
			// again, a new table in its place), look again.
			if again, rerr := tableExists(ctx, conn, db, aside); rerr != nil || !again {
				if isCode(err, codeTableAlreadyExists, codeUnknownTable) && tries < 5 {
					return upgradeVersionTry(ctx, conn, db, s, tries+1)
				}
				return fmt.Errorf("migrate: rebuild %s.%s with the _version column: rename: %w", db, s.Name, err)
			}
		}
	case !hasAside:
		return nil
	}
	err = copyAside(ctx, conn, db, s, aside)
	if err != nil {
		// Another service finished the rebuild (and dropped the table
		// aside) while this one copied too.
		if still, rerr := tableExists(ctx, conn, db, aside); rerr == nil && !still {
			return nil
		}
	}
	return err
}

// copyAside fills the records table from the table set aside by
// upgradeVersion and drops it once every key is in.
func copyAside(ctx context.Context, conn Conn, db string, s *schemas.Schema, aside string) error {
	have, err := columns(ctx, conn, db, aside)
	if err != nil {
		return err
	}
	var cols []string
	for _, c := range recordColumns(s) {
		if _, ok := have[c[0]]; ok && c[0] != schemas.VersionColumn {
			cols = append(cols, Ident(c[0]))
		}
	}
	list := strings.Join(cols, ", ")
	steps := []string{
		s.DDL(Ident(db))[1],
		fmt.Sprintf("INSERT INTO %s (%s, %s) SELECT %s, _offset FROM %s", Table(db, s.Name), list, Ident(schemas.VersionColumn), list, Table(db, aside)),
	}
	for _, stmt := range steps {
		if err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("migrate: rebuild %s.%s with the _version column (%s is kept until it is done): %s: %w",
				db, s.Name, aside, firstLine(stmt), err)
		}
	}
	keys := make([]string, len(s.Key))
	for i, k := range s.Key {
		keys[i] = Ident(k)
	}
	key := "tuple(" + strings.Join(keys, ", ") + ")"
	var before, after uint64
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT (SELECT uniqExact(%s) FROM %s), (SELECT uniqExact(%s) FROM %s)",
		key, Table(db, aside), key, Table(db, s.Name))).Scan(&before, &after); err != nil {
		return fmt.Errorf("migrate: count the rebuilt %s.%s: %w", db, s.Name, err)
	}
	if after < before {
		return fmt.Errorf("migrate: rebuilt %s.%s has %d keys, the old table %s %d; it is kept and the rebuild is tried again",
			db, s.Name, after, aside, before)
	}
	return conn.Exec(ctx, "DROP TABLE IF EXISTS "+Table(db, aside))
}

// tableExists reports whether db.name exists.
func tableExists(ctx context.Context, conn Conn, db, name string) (bool, error) {
	var n uint64
	q := fmt.Sprintf("SELECT count() FROM system.tables WHERE database = %s AND name = %s", Quote(db), Quote(name))
	err := readTables(ctx, func() error { return conn.QueryRow(ctx, q).Scan(&n) })
	return n > 0, err
}
