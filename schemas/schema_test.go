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
		{Name: "x", Key: []string{"sku"}, Columns: []Column{{Name: "sku", Type: String, Required: true}}, AggregateBy: "name"},
	}
	for i, s := range bad {
		if err := s.Check(); err == nil {
			t.Errorf("schema %d %+v passed Check", i, s)
		}
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
	key, err := events.Validate(nil, fields("ts", "17", "id", `"a,b"`))
	if err != nil || string(key) != `["a,b",17]` {
		t.Fatalf("key %s, err %v", key, err)
	}
	if _, err := events.Validate(nil, fields("id", `"a"`, "ts", `1.5`)); err == nil {
		t.Fatal("a fractional ts passed as Int64")
	}
}
