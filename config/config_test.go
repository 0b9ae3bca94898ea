package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// inTempDir runs the test in an empty folder so that no skuflow.yaml of the
// repository is picked up.
func inTempDir(t *testing.T) string {
	dir := t.TempDir()
	t.Chdir(dir)
	return dir
}

func TestDefaultsAreValid(t *testing.T) {
	inTempDir(t)
	c, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := Default(); c.Kafka.Topic != got.Kafka.Topic || c.Loader.MaxRecordBytes != got.Loader.MaxRecordBytes || c.Processor.FlushInterval != got.Processor.FlushInterval {
		t.Fatalf("Load() = %+v, want the defaults %+v", c, got)
	}
}

func TestPrecedence(t *testing.T) {
	dir := inTempDir(t)
	file := filepath.Join(dir, "my.yaml")
	os.WriteFile(file, []byte("kafka:\n  topic: from-file\n  partitions: 3\nloader:\n  max_record_bytes: 2MiB\nprocessor:\n  flush_interval: 250ms\n"), 0o644)
	t.Setenv("SKUFLOW_KAFKA_PARTITIONS", "4")
	t.Setenv("SKUFLOW_KAFKA_BROKERS", "a:1,b:2")
	t.Setenv("SKUFLOW_CLICKHOUSE_DATABASE", "envdb")

	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.String("topic", "flag-default", "")
	fs.Int("partitions", 99, "")
	if err := fs.Parse([]string{"--partitions", "5"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(Options{File: file, Flags: fs, Bind: map[string]string{"topic": "kafka.topic", "partitions": "kafka.partitions"}})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"file beats default (flag not set)", c.Kafka.Topic, "from-file"},
		{"set flag beats env and file", c.Kafka.Partitions, 5},
		{"env list", strings.Join(c.Kafka.Brokers, " "), "a:1 b:2"},
		{"env beats default", c.ClickHouse.Database, "envdb"},
		{"size with unit", c.Loader.MaxRecordBytes, Bytes(2 << 20)},
		{"duration", c.Processor.FlushInterval, 250 * time.Millisecond},
		{"default kept", c.Processor.BatchRows, Default().Processor.BatchRows},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %v, want %v", ch.what, ch.got, ch.want)
		}
	}
}

func TestConfigEnvNamesFile(t *testing.T) {
	dir := inTempDir(t)
	file := filepath.Join(dir, "env.yaml")
	os.WriteFile(file, []byte("kafka:\n  topic: via-env\n"), 0o644)
	t.Setenv("SKUFLOW_CONFIG", file)
	c, err := Load(Options{})
	if err != nil || c.Kafka.Topic != "via-env" {
		t.Fatalf("topic %q, err %v", c.Kafka.Topic, err)
	}
}

func TestDefaultFileIsRead(t *testing.T) {
	dir := inTempDir(t)
	os.WriteFile(filepath.Join(dir, DefaultFile), []byte("kafka:\n  topic: local\n"), 0o644)
	c, err := Load(Options{})
	if err != nil || c.Kafka.Topic != "local" {
		t.Fatalf("topic %q, err %v", c.Kafka.Topic, err)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	dir := inTempDir(t)
	for _, c := range []struct {
		yaml, key string
	}{
		{"kafka:\n  partitions: 0\n", "kafka.partitions"},
		{"kafka:\n  brokers: [nohostport]\n", "kafka.brokers"},
		{"kafka:\n  compression: brotli\n", "kafka.compression"},
		{"clickhouse:\n  database: 'a.b'\n", "clickhouse.database"},
		{"clickhouse:\n  addr: localhost\n", "clickhouse.addr"},
		{"loader:\n  max_record_bytes: 10\n", "loader.max_record_bytes"},
		{"loader:\n  url_connect_timeout: 0s\n", "loader.url_connect_timeout"},
		{"loader:\n  url_header_timeout: -1s\n", "loader.url_header_timeout"},
		{"loader:\n  url_idle_timeout: 0s\n", "loader.url_idle_timeout"},
		{"loader:\n  url_max_bytes: 10\n", "loader.url_max_bytes"},
		{"loader:\n  zstd_max_window: 1KiB\n", "loader.zstd_max_window"},
		{"processor:\n  flush_interval: 0s\n", "processor.flush_interval"},
		{"broker:\n  port: 70000\n", "broker.port"},
		{"log:\n  level: loud\n", "log.level"},
	} {
		file := filepath.Join(dir, "bad.yaml")
		os.WriteFile(file, []byte(c.yaml), 0o644)
		_, err := Load(Options{File: file})
		if !IsKeyError(err, c.key) || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%q: error %v does not name %s", c.yaml, err, c.key)
		}
	}
}

func TestUnknownKeyIsAnError(t *testing.T) {
	dir := inTempDir(t)
	file := filepath.Join(dir, "typo.yaml")
	os.WriteFile(file, []byte("kafka:\n  topik: x\n"), 0o644)
	_, err := Load(Options{File: file})
	if err == nil || !strings.Contains(err.Error(), "topik") {
		t.Fatalf("a misspelt key must be reported, got %v", err)
	}
}

func TestMissingNamedFile(t *testing.T) {
	inTempDir(t)
	if _, err := Load(Options{File: "nope.yaml"}); err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("got %v", err)
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]Bytes{"0": 0, "1024": 1024, "1KiB": 1024, "64MiB": 64 << 20, "1 GiB": 1 << 30, "1MB": 1e6, "3B": 3} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1TiB", "1.5MiB"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) gave no error", in)
		}
	}
}

// The example file in the repository must load and list every key.
func TestExampleFile(t *testing.T) {
	example, err := filepath.Abs("../skuflow.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	inTempDir(t)
	if _, err := Load(Options{File: example}); err != nil {
		t.Fatalf("example: %v", err)
	}
	for _, key := range Keys() {
		leaf := key[strings.LastIndex(key, ".")+1:]
		if !strings.Contains(string(text), leaf+":") {
			t.Errorf("skuflow.example.yaml does not show %s", key)
		}
	}
}

// A database name reaches every SQL statement: only plain identifiers are
// accepted, and the error names the key and the rule.
func TestDatabaseMustBeAnIdentifier(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"skuflow", true},
		{"_x1", true},
		{"Sku_Flow_2", true},
		{"x;DROP", false},
		{"x DROP", false},
		{"a\tb", false},
		{"a/b", false},
		{"a.b", false},
		{"a-b", false},
		{"a`b", false},
		{`a\b`, false},
		{"1abc", false},
		{"", false},
		{"produits_é", false},
	} {
		cfg := Default()
		cfg.ClickHouse.Database = c.name
		err := cfg.Validate()
		if c.ok {
			if err != nil {
				t.Errorf("%q refused: %v", c.name, err)
			}
			continue
		}
		want := `clickhouse.database: ` + strconv.Quote(c.name) + ` is not an identifier (letters, digits, _; not starting with a digit)`
		if !IsKeyError(err, "clickhouse.database") || err == nil || err.Error() != want {
			t.Errorf("%q: got %v, want %s", c.name, err, want)
		}
	}
}

// A bad type declaration is refused at start-up, each problem named by its
// key; types may not take products, another type's names or topic.
func TestTypeDeclarations(t *testing.T) {
	example, err := filepath.Abs("../skuflow.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	inTempDir(t)
	write := func(body string) string {
		path := filepath.Join(t.TempDir(), "skuflow.yaml")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, c := range []struct {
		name, yaml, key, want string
	}{
		{"key not a column", `
types:
  events:
    key: [id, tss]
    columns: [{name: id, type: String, required: true}, {name: ts, type: Timestamp, required: true}]
`, "types.events.key[1]", `types.events.key[1]: "tss" is not a column`},
		{"products is built in", `
types:
  products:
    key: [sku]
    columns: [{name: sku, type: String, required: true}]
`, "types.products", "built in"},
		{"a view of another type", `
types:
  events:
    key: [id]
    columns: [{name: id, type: String, required: true}]
    aggregates: [{name: products_agg, by: [id]}]
`, "types.events", `"products_agg" is also a table or view of type products`},
		{"the same topic", `
types:
  events:
    topic: products
    key: [id]
    columns: [{name: id, type: String, required: true}]
`, "types.events.topic", `topic "products" is also type products's`},
		{"an inbox folder's name", `
types:
  done:
    key: [id]
    columns: [{name: id, type: String, required: true}]
`, "types.done", "a folder of the products inbox"},
		{"a bad type name", `
types:
  my-events:
    key: [id]
    columns: [{name: id, type: String, required: true}]
`, "types.my-events", "not an identifier"},
		{"an unknown key", `
types:
  events:
    keys: [id]
`, "", "keys"},
		{"negative partitions", `
types:
  events:
    partitions: -3
    key: [id]
    columns: [{name: id, type: String, required: true}]
`, "types.events.partitions", "must be between 1 and 10000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(Options{File: write(c.yaml)})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one with %q", err, c.want)
			}
			if c.key != "" && !IsKeyError(err, c.key) {
				t.Fatalf("err = %v does not name key %s", err, c.key)
			}
		})
	}

	cfg, err := Load(Options{File: example})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range cfg.Schemas() {
		names = append(names, s.Name+"@"+s.Topic)
	}
	if got := strings.Join(names, " "); got != "products@products events@events plays@plays" {
		t.Fatalf("types %s", got)
	}
	plays, err := cfg.Schema("plays")
	if err != nil {
		t.Fatal(err)
	}
	pc := cfg.For(plays)
	if pc.Kafka.Topic != "plays" || pc.Processor.Group != "skuflow-processor-plays" || pc.Aggregator.Group != "skuflow-aggregator-plays" {
		t.Fatalf("plays runs with %+v %+v %+v", pc.Kafka, pc.Processor, pc.Aggregator)
	}
	products, _ := cfg.Schema("products")
	if pp := cfg.For(products); pp.Processor.Group != "skuflow-processor" || pp.Kafka.Topic != "products" {
		t.Fatalf("products runs with %+v", pp.Processor)
	}
	if _, err := cfg.Schema("songs"); err == nil || !strings.Contains(err.Error(), `no record type "songs"`) {
		t.Fatalf("unknown type: %v", err)
	}

	// A type's own partition count is its services' and loader's
	// kafka.partitions; the others keep kafka.partitions.
	wide, err := Load(Options{File: write(`
kafka: {partitions: 6}
types:
  wide:
    partitions: 24
    key: [id]
    columns: [{name: id, type: String, required: true}]
  narrow:
    key: [id]
    columns: [{name: id, type: String, required: true}]
`)})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"wide": 24, "narrow": 6, "products": 6} {
		s, err := wide.Schema(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := wide.For(s).Kafka.Partitions; got != want {
			t.Errorf("%s runs with %d partitions, want %d", name, got, want)
		}
	}
}
