package schemas

import "fmt"

// Decl is a record type as a user declares it, under types.NAME in
// skuflow.yaml (see skuflow.example.yaml for every key).
type Decl struct {
	// Topic is the type's Kafka topic; the type's name when empty.
	Topic string `mapstructure:"topic"`
	// Partitions is its topic's partition count; kafka.partitions when 0.
	Partitions int `mapstructure:"partitions"`
	// Key lists the key fields; empty with identity: source.
	Key []string `mapstructure:"key"`
	// Identity "source" makes a record's identity its file and place in
	// it (Schema.Identity).
	Identity string    `mapstructure:"identity"`
	Columns  []ColDecl `mapstructure:"columns"`
	Extra    string    `mapstructure:"extra"` // "extra" when empty
	Aggs     []AggDecl `mapstructure:"aggregates"`
}

// ColDecl declares a column.
type ColDecl struct {
	Name     string `mapstructure:"name"`
	Type     string `mapstructure:"type"`
	Required bool   `mapstructure:"required"`
	Nullable bool   `mapstructure:"nullable"`
}

// AggDecl declares an aggregate: the sum of column Sum by the By columns,
// or without Sum the number of keys by them.
type AggDecl struct {
	Name string   `mapstructure:"name"`
	By   []string `mapstructure:"by"`
	Sum  string   `mapstructure:"sum"`
	// As names the result column: "keys" for a count, the summed
	// column's name for a sum, when empty.
	As string `mapstructure:"as"`
	// Table holds the partial results; NAME_state when empty.
	Table string `mapstructure:"table"`
}

// IdentitySource is the value of Decl.Identity that makes a record's
// identity where it came from.
const IdentitySource = "source"

// Schema builds the schema of a type declared as name, and returns every
// problem it has, each with its path below the declaration.
func (d Decl) Schema(name string) (*Schema, []Problem) {
	s := &Schema{Name: name, Topic: d.Topic, Partitions: d.Partitions, Key: d.Key, Extra: d.Extra}
	var ps []Problem
	if d.Partitions < 0 || d.Partitions > MaxPartitions {
		ps = append(ps, Problem{"partitions", fmt.Sprintf("must be between 1 and %d (or left out for kafka.partitions), got %d", MaxPartitions, d.Partitions)})
	}
	if s.Topic == "" {
		s.Topic = name
	}
	if s.Extra == "" {
		s.Extra = "extra"
	}
	switch d.Identity {
	case "":
	case IdentitySource:
		s.Identity = true
	default:
		ps = append(ps, Problem{"identity", fmt.Sprintf("%q: the only identity is %q (the file and the record's place in it)", d.Identity, IdentitySource)})
	}
	for _, c := range d.Columns {
		s.Columns = append(s.Columns, Column{Name: c.Name, Type: ColumnType(c.Type), Required: c.Required, Nullable: c.Nullable})
	}
	for _, a := range d.Aggs {
		agg := Aggregate{Name: a.Name, Table: a.Table, By: a.By, Sum: a.Sum, As: a.As}
		if agg.Table == "" && a.Name != "" {
			agg.Table = a.Name + "_state"
		}
		if agg.As == "" {
			agg.As = "keys"
			if a.Sum != "" {
				agg.As = a.Sum
			}
		}
		s.Aggregates = append(s.Aggregates, agg)
	}
	return s, append(ps, s.Problems()...)
}

// Names returns the names a schema puts into ClickHouse: its table, its
// final view, and each aggregate's view and table. Two types must not
// share one.
func (s *Schema) Names() []string {
	names := []string{s.Name, s.Name + "_final"}
	for _, a := range s.Aggregates {
		names = append(names, a.Name, a.Table)
	}
	return names
}

// CheckIdentifier refuses a name that is not a plain SQL identifier:
// ASCII letters, digits and _, not starting with a digit. Names that reach
// ClickHouse's SQL (the database, the tables and columns of a schema) must
// pass it; they are quoted as well.
func CheckIdentifier(name string) error {
	ok := name != ""
	for i, r := range name {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_'
		if !letter && (i == 0 || r < '0' || r > '9') {
			ok = false
			break
		}
	}
	if !ok {
		return fmt.Errorf("%q is not an identifier (letters, digits, _; not starting with a digit)", name)
	}
	return nil
}

// identifierProblems returns a problem for each name of s that is not a
// plain identifier.
func (s *Schema) identifierProblems() []Problem {
	var ps []Problem
	check := func(path, name string) {
		if name == "" {
			return // reported as empty
		}
		if err := CheckIdentifier(name); err != nil {
			ps = append(ps, Problem{path, err.Error()})
		}
	}
	check("name", s.Name)
	check("extra", s.Extra)
	for i, c := range s.Columns {
		check(fmt.Sprintf("columns[%d].name", i), c.Name)
	}
	for i, a := range s.Aggregates {
		check(fmt.Sprintf("aggregates[%d].name", i), a.Name)
		check(fmt.Sprintf("aggregates[%d].table", i), a.Table)
		check(fmt.Sprintf("aggregates[%d].as", i), a.As)
	}
	return ps
}
