package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"skuflow/internal/clickhouse"
)

// State is where a series of incremental exports got to, kept in a file
// between them. Each partition's versions only grow (a later write of a
// key is a later offset of the key's one partition), so "newer than the
// last export" is, per partition, a version at or past Next.
type State struct {
	Source string `json:"source"`
	Format Format `json:"format"`
	// Where is the filter of the series: a part holds what changed among
	// the rows it selects, so it cannot change between parts.
	Where string `json:"where,omitempty"`
	// Parts is how many parts have been written; the next is Parts+1.
	Parts int `json:"parts"`
	// Next is, per partition, the first version no part holds yet.
	Next map[string]uint64 `json:"next_version"`
}

// LoadState reads a state file; one that does not exist is a new series.
func LoadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Next: map[string]uint64{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the export state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("export state %s: not a state file: %w", path, err)
	}
	if s.Next == nil {
		s.Next = map[string]uint64{}
	}
	return &s, nil
}

// Save writes the state file whole or not at all.
func (s *State) Save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write the export state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write the export state %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write the export state %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}

// PartPath is the file of part n of a series in dir; file is the file's
// number within the part when it is split (0: not split).
func PartPath(dir, name string, f Format, n, file int) string {
	if file == 0 {
		return filepath.Join(dir, fmt.Sprintf("%s-%06d%s", name, n, f.Ext()))
	}
	return filepath.Join(dir, fmt.Sprintf("%s-%06d-%05d%s", name, n, file, f.Ext()))
}

// Incremental writes, as the series' next part in dir, the current rows
// of src whose version is newer than what the parts before saw, and saves
// where it got to in the state file. The bounds are read first: a write
// that arrives during the export waits for the next part, and a key
// written again meanwhile is in that part with its last version, not in
// this one with a version that is no longer current. No rows, no part. The
// same state over the same data writes the same files.
func Incremental(ctx context.Context, conn clickhouse.Conn, src Source, o Options, statePath, dir string) (*Result, *State, error) {
	if !src.versioned {
		return nil, nil, fmt.Errorf("%s cannot be exported incrementally: it is an aggregate, whose groups have no version; export it whole", src.Name)
	}
	st, err := LoadState(statePath)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case st.Source == "":
		st.Source, st.Format, st.Where = src.Name, o.Format, o.Where
	case st.Source != src.Name:
		return nil, nil, fmt.Errorf("export state %s is of %s, not %s: give each series a state file of its own", statePath, st.Source, src.Name)
	case st.Format != o.Format:
		return nil, nil, fmt.Errorf("export state %s is a series of %s files, not %s", statePath, st.Format, o.Format)
	case st.Where != o.Where:
		return nil, nil, fmt.Errorf("export state %s is a series filtered by %q, not %q: a filter cannot change within a series", statePath, st.Where, o.Where)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", dir, err)
	}

	to, err := lastVersions(ctx, conn, src)
	if err != nil {
		return nil, nil, err
	}
	b := &bounds{from: map[int32]uint64{}, to: to}
	for p := range to {
		b.from[p] = st.Next[strconv.Itoa(int(p))]
	}
	part := st.Parts + 1
	out := Output{Path: func(n int) string {
		if o.SplitRows > 0 {
			return PartPath(dir, src.Name, o.Format, part, n)
		}
		return PartPath(dir, src.Name, o.Format, part, 0)
	}}
	res, err := run(ctx, conn, src, src.query(o.Where, b), o, out)
	if err != nil {
		return nil, nil, err
	}
	if res.Rows == 0 {
		for _, f := range res.Files {
			_ = os.Remove(f.Path)
		}
		res.Files = nil
	} else {
		st.Parts = part
	}
	for p, v := range to {
		st.Next[strconv.Itoa(int(p))] = v + 1
	}
	if err := st.Save(statePath); err != nil {
		return nil, nil, err
	}
	return res, st, nil
}

// lastVersions returns the highest version of each partition of src's
// table now.
func lastVersions(ctx context.Context, conn clickhouse.Conn, src Source) (map[int32]uint64, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT _partition, max(_version) FROM %s GROUP BY _partition",
		clickhouse.Table(src.db, src.from)))
	if err != nil {
		return nil, fmt.Errorf("read the versions of %s: %w", src.Name, err)
	}
	defer rows.Close()
	out := map[int32]uint64{}
	for rows.Next() {
		var p uint32
		var v uint64
		if err := rows.Scan(&p, &v); err != nil {
			return nil, fmt.Errorf("read the versions of %s: %w", src.Name, err)
		}
		out[int32(p)] = v
	}
	return out, rows.Err()
}

func sortedPartitions(m map[int32]uint64) []int32 {
	ps := make([]int32, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}
