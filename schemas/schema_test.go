package schemas

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from golden file:\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

func TestProductsDDL(t *testing.T) {
	golden(t, "products.sql", strings.Join(Products.DDL("skuflow"), ";\n\n")+";\n")
}

func TestCompositeKeyDDL(t *testing.T) {
	events := &Schema{
		Name:    "events",
		Key:     []string{"id", "ts"},
		Columns: []Column{{Name: "id", Type: String, Required: true}, {Name: "ts", Type: Int64, Required: true}, {Name: "kind", Type: String}},
		Extra:   "extra",
	}
	if err := events.Check(); err != nil {
		t.Fatal(err)
	}
	golden(t, "events.sql", strings.Join(events.DDL("skuflow"), ";\n\n")+";\n")
}

func TestCheck(t *testing.T) {
	if err := Products.Check(); err != nil {
		t.Fatalf("built-in schema: %v", err)
	}
	bad := []*Schema{
		{Key: []string{"sku"}},
		{Name: "x"},
		{Name: "x", Key: []string{"sku"}, Columns: []Column{{Name: "sku", Type: String}}},
		{Name: "x", Key: []string{"sku"}, Columns: []Column{{Name: "sku", Type: String, Required: true}, {Name: "sku", Type: String}}},
		{Name: "x", Key: []string{"sku"}, Columns: []Column{{Name: "sku", Type: String, Required: true}, {Name: "_job", Type: String}}},
		{Name: "x", Key: []string{"sku"}, Columns: []Column{{Name: "sku", Type: String, Required: true}},
			Aggregates: []Aggregate{{Name: "a", Table: "t", By: []string{"name"}, As: "n"}}},
	}
	for i, s := range bad {
		s.Extra = "extra"
		if err := s.Check(); err == nil {
			t.Errorf("schema %d %+v passed Check", i, s)
		}
	}
}

// TestDeclProblems gives a declaration with each mistake a user can make,
// and checks that each is found, at its path, with a reason a user reads.
func TestDeclProblems(t *testing.T) {
	for _, c := range []struct {
		name string
		decl Decl
		path string
		want string
	}{
		{"key not a column", Decl{Key: []string{"id", "tss"}, Columns: []ColDecl{{Name: "id", Type: "String", Required: true}, {Name: "ts", Type: "Timestamp", Required: true}}},
			"key[1]", `"tss" is not a column`},
		{"key not required", Decl{Key: []string{"id"}, Columns: []ColDecl{{Name: "id", Type: "String"}}}, "key[0]", `must be required`},
		{"float key", Decl{Key: []string{"id"}, Columns: []ColDecl{{Name: "id", Type: "Float64", Required: true}}}, "key[0]", `Float64`},
		{"no key", Decl{Columns: []ColDecl{{Name: "id", Type: "String"}}}, "key", `at least one key field`},
		{"key and identity", Decl{Identity: "source", Key: []string{"id"}, Columns: []ColDecl{{Name: "id", Type: "String", Required: true}}}, "key", `no key fields`},
		{"bad identity", Decl{Identity: "file", Columns: []ColDecl{{Name: "id", Type: "String"}}}, "identity", `the only identity is "source"`},
		{"unknown type", Decl{Key: []string{"id"}, Columns: []ColDecl{{Name: "id", Type: "String", Required: true}, {Name: "n", Type: "int"}}}, "columns[1].type", `"int" is not a column type (one of String, Int64`},
		{"reserved column", Decl{Key: []string{"id"}, Columns: []ColDecl{{Name: "id", Type: "String", Required: true}, {Name: "_line", Type: "Int64"}}}, "columns[1].name", `skuflow's`},
		{"not an identifier", Decl{Key: []string{"id"}, Columns: []ColDecl{{Name: "id", Type: "String", Required: true}, {Name: "a b", Type: "Int64"}}}, "columns[1].name", `not an identifier`},
		{"repeated column", Decl{Key: []string{"id"}, Columns: []ColDecl{{Name: "id", Type: "String", Required: true}, {Name: "id", Type: "Int64"}}}, "columns[1].name", `repeated`},
		{"required and nullable", Decl{Key: []string{"id"}, Columns: []ColDecl{{Name: "id", Type: "String", Required: true}, {Name: "n", Type: "Int64", Required: true, Nullable: true}}}, "columns[1].nullable", `never null`},
		{"sum of a string", Decl{Key: []string{"id"}, Columns: []ColDecl{{Name: "id", Type: "String", Required: true}, {Name: "n", Type: "String"}},
			Aggs: []AggDecl{{Name: "s", Sum: "n", By: []string{"id"}}}}, "aggregates[0].sum", `only integer columns`},
		{"sum of a float", Decl{Key: []string{"id"}, Columns: []ColDecl{{Name: "id", Type: "String", Required: true}, {Name: "n", Type: "Float64"}},
			Aggs: []AggDecl{{Name: "s", Sum: "n", By: []string{"id"}}}}, "aggregates[0].sum", `sum exactly`},
		{"group by nullable", Decl{Key: []string{"id"}, Columns: []ColDecl{{Name: "id", Type: "String", Required: true}, {Name: "n", Type: "Int64", Nullable: true}},
			Aggs: []AggDecl{{Name: "s", By: []string{"n"}}}}, "aggregates[0].by[0]", `nullable`},
		{"group by nothing", Decl{Key: []string{"id"}, Columns: []ColDecl{{Name: "id", Type: "String", Required: true}}, Aggs: []AggDecl{{Name: "s"}}}, "aggregates[0].by", `at least one column`},
		{"group by unknown", Decl{Key: []string{"id"}, Columns: []ColDecl{{Name: "id", Type: "String", Required: true}}, Aggs: []AggDecl{{Name: "s", By: []string{"x"}}}}, "aggregates[0].by[0]", `"x" is not a column`},
		{"aggregate without name", Decl{Key: []string{"id"}, Columns: []ColDecl{{Name: "id", Type: "String", Required: true}}, Aggs: []AggDecl{{By: []string{"id"}}}}, "aggregates[0].name", `must not be empty`},
		{"an aggregate named as its type's table", Decl{Key: []string{"id"}, Columns: []ColDecl{{Name: "id", Type: "String", Required: true}}, Aggs: []AggDecl{{Name: "t", By: []string{"id"}}}}, "aggregates[0].name", `"t" is already the type's table`},
		{"an aggregate's table named as the final view", Decl{Key: []string{"id"}, Columns: []ColDecl{{Name: "id", Type: "String", Required: true}}, Aggs: []AggDecl{{Name: "a", Table: "t_final", By: []string{"id"}}}}, "aggregates[0].table", `already the type's final view`},
		{"two aggregates on one table", Decl{Key: []string{"id"}, Columns: []ColDecl{{Name: "id", Type: "String", Required: true}}, Aggs: []AggDecl{{Name: "a", Table: "x", By: []string{"id"}}, {Name: "b", Table: "x", By: []string{"id"}}}}, "aggregates[1].table", `already the table of aggregates[0]`},
		{"result named as a column of the table", Decl{Key: []string{"id"}, Columns: []ColDecl{{Name: "id", Type: "String", Required: true}}, Aggs: []AggDecl{{Name: "s", By: []string{"id"}, As: "count"}}}, "aggregates[0].as", `column of the aggregate's table`},
		{"group by a column named like the table's own", Decl{Key: []string{"id"}, Columns: []ColDecl{{Name: "id", Type: "String", Required: true}, {Name: "version", Type: "Int64"}}, Aggs: []AggDecl{{Name: "s", By: []string{"version"}}}}, "aggregates[0].by[0]", `rename the column`},
		{"result named as a group column", Decl{Key: []string{"id"}, Columns: []ColDecl{{Name: "id", Type: "String", Required: true}}, Aggs: []AggDecl{{Name: "s", By: []string{"id"}, As: "id"}}}, "aggregates[0].as", `also a column grouped by`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, ps := c.decl.Schema("t")
			for _, p := range ps {
				if p.Path == c.path && strings.Contains(p.Reason, c.want) {
					return
				}
			}
			t.Fatalf("problems %+v; want one at %s containing %q", ps, c.path, c.want)
		})
	}
	good := Decl{Identity: "source", Columns: []ColDecl{{Name: "song", Type: "String", Required: true}, {Name: "date", Type: "Date", Required: true}, {Name: "plays", Type: "UInt64", Required: true}},
		Aggs: []AggDecl{{Name: "plays_by_song_date", Sum: "plays", By: []string{"song", "date"}}}}
	s, ps := good.Schema("plays")
	if len(ps) > 0 {
		t.Fatalf("good declaration refused: %+v", ps)
	}
	if s.Topic != "plays" || s.Extra != "extra" || s.Aggregates[0].Table != "plays_by_song_date_state" || s.Aggregates[0].As != "plays" {
		t.Fatalf("defaults not filled: %+v", s)
	}
}

func fields(kv ...string) []Field {
	var fs []Field
	for i := 0; i < len(kv); i += 2 {
		fs = append(fs, Field{Name: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return fs
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name    string
		fields  []Field
		key     string
		wantErr string
	}{
		{"plain", fields("sku", `"a-1"`, "name", `"N"`), "a-1", ""},
		{"escaped key", fields("sku", `"a\u00e9\"b"`), `aé"b`, ""},
		{"extra fields are fine", fields("sku", `"k"`, "color", `[1,2]`), "k", ""},
		{"last duplicate wins", fields("sku", `"old"`, "sku", `"new"`), "new", ""},
		{"missing key", fields("name", `"N"`), "", `field "sku": required field is missing`},
		{"null key", fields("sku", `null`), "", `field "sku": required field is missing`},
		{"empty key", fields("sku", `""`), "", `field "sku": required field is empty`},
		{"number key", fields("sku", `12`), "", `field "sku": want a string, got a number`},
		{"object name", fields("sku", `"k"`, "name", `{}`), "", `field "name": want a string, got an object`},
		{"null name is absent", fields("sku", `"k"`, "name", `null`), "k", ""},
		{"case matters", fields("SKU", `"k"`), "", `field "sku": required field is missing`},
	} {
		t.Run(c.name, func(t *testing.T) {
			key, err := Products.Validate(nil, c.fields)
			if c.wantErr != "" {
				if err == nil || err.Error() != c.wantErr {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || string(key) != c.key {
				t.Fatalf("key %q, err %v; want %q", key, err, c.key)
			}
		})
	}
}

func TestValidateCompositeKey(t *testing.T) {
	events := &Schema{Name: "events", Key: []string{"id", "ts"}, Extra: "extra",
		Columns: []Column{{Name: "id", Type: String, Required: true}, {Name: "ts", Type: Int64, Required: true}}}
	key, err := events.Validate(nil, fields("ts", "17", "id", `"a,b\"\u00e9"`))
	if err != nil || string(key) != `["a,b\"é","17"]` {
		t.Fatalf("key %s, err %v", key, err)
	}
	// Another spelling of the same values is the same key.
	if again, err := events.Validate(nil, fields("id", `"a,b\"é"`, "ts", `"17"`)); err != nil || string(again) != string(key) {
		t.Fatalf("key %s, err %v; want %s", again, err, key)
	}
	if _, err := events.Validate(nil, fields("id", `"a"`, "ts", `1.5`)); err == nil {
		t.Fatal("a fractional ts passed as Int64")
	}
}
