package api_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"skuflow/internal/testenv"
)

// redriveConfig declares items (key id; a count of keys by cat). Before
// the fix cat is required and there is no color column; the fix relaxes
// the rule and adds the column.
func redriveConfig(t *testing.T, path string, fixed bool) {
	t.Helper()
	cat, color := "true", ""
	if fixed {
		cat, color = "false", "\n      - {name: color, type: String}"
	}
	body := `types:
  items:
    key: [id]
    columns:
      - {name: id, type: String, required: true}
      - {name: cat, type: String, required: ` + cat + `}
      - {name: qty, type: UInt64}` + color + `
    aggregates:
      - {name: items_by_cat, by: [cat], as: items}
`
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRedrive: files with bad records (an NDJSON and a CSV file of items,
// a CSV file of products) are pushed; `loader errors --raw` gives the CSV
// job's header and rejected rows byte for byte and the NDJSON job's
// records, reporting the one whose raw was cut; the declaration of items
// is fixed (cat no longer required, a color column added) and the
// services restarted; `loader redrive` puts the records the fix makes
// valid in the table exactly once, with the new column filled, the
// aggregates stay exact, the records still invalid are rejected again
// under the new jobs at their original lines, both jobs show the link in
// `loader status --json` and in GET /v1/jobs/{id} (held to the OpenAPI
// document), and a second re-drive of a job is refused, naming the first.
func TestRedrive(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "skuflow.yaml")
	redriveConfig(t, cfgPath, false)
	st := testenv.NewStack(t, "SKUFLOW_CONFIG="+cfgPath)
	proc := st.Service(t, "processor")
	agg := st.Service(t, "aggregator")
	base, _ := st.API(t)
	c := newClient(base, "")

	loader := func(args ...string) (string, string, error) {
		t.Helper()
		return st.Loader(t, args...)
	}
	must := func(args ...string) string {
		t.Helper()
		out, stderr, err := loader(args...)
		if err != nil {
			t.Fatalf("loader %v: %v\n%s\n%s", args, err, out, stderr)
		}
		return out
	}
	pushJob := func(typ, path string) string {
		t.Helper()
		var sum struct {
			Results []struct {
				ID       string `json:"id"`
				Rejected int64  `json:"records_rejected"`
			} `json:"results"`
		}
		out := must("push", "--wait", "--wait-timeout", "3m", "--no-progress", "--json", "--type", typ, path)
		if err := json.Unmarshal([]byte(out), &sum); err != nil || len(sum.Results) != 1 || sum.Results[0].ID == "" {
			t.Fatalf("push %s: %v\n%s", path, err, out)
		}
		return sum.Results[0].ID
	}
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	huge := strings.Repeat("x", 20<<10)
	ndLines := []string{
		`{"id":"1","cat":"a","qty":1}`,
		`{"id":"2","qty":2,"color":"red"}`,           // no cat: valid once fixed
		`{"id":"3","cat":"b","qty":"many"}`,          // bad qty: stays bad
		`{"id":"4","cat":`,                           // not JSON: stays bad
		`{"id":"5","cat":"","qty":5,"color":"blue"}`, // empty cat: valid once fixed
		`{"id":"1","cat":"c","qty":9}`,               // a later write of 1
		`{"id":"7","qty":7,"pad":"` + huge + `"}`,    // no cat, but its raw is cut at 16 KiB
	}
	nd := write("items.ndjson", strings.Join(ndLines, "\n")+"\n")
	csvRows := []string{
		"id,cat,qty",
		"8,a,8",
		"9,,9",                  // empty cat: valid once fixed
		`10,"b, with comma",x`,  // bad qty: stays bad
		"11,a",                  // a field short: stays bad
		"12,\"multi\nline\",12", // lines 6 and 7
		`13,,"13"`,              // empty cat: valid once fixed
	}
	csvFile := write("items.csv", strings.Join(csvRows, "\r\n")+"\r\n")
	prodFile := write("products.csv", "sku,name,description\np1,Pen,ok\n,No sku,x\np2,Pad\np3,Pencil,ok\n")

	ndJob := pushJob("items", nd)
	csvJob := pushJob("items", csvFile)
	prodJob := pushJob("products", prodFile)

	// errors --raw: the CSV job's header and rejected rows as they were.
	out, stderr, err := loader("errors", "--raw", csvJob)
	if want := "id,cat,qty\n9,,9\n" + `10,"b, with comma",x` + "\n11,a\n" + `13,,"13"` + "\n"; err != nil || out != want {
		t.Fatalf("errors --raw %s: %v\n%q\nwant %q\n%s", csvJob, err, out, want, stderr)
	}
	// The NDJSON job's records, but the one whose raw was cut: named, not
	// written as if whole, and the command says so by its exit status.
	out, stderr, err = loader("errors", "--raw", ndJob)
	if want := strings.Join([]string{ndLines[1], ndLines[2], ndLines[3], ndLines[4]}, "\n") + "\n"; err == nil || out != want ||
		!strings.Contains(stderr, "items.ndjson:7 (validate): only the first 16384 of its") {
		t.Fatalf("errors --raw %s: %v\n%q\nwant %q\n%s", ndJob, err, out, want, stderr)
	}

	// Products' declaration is built in: its re-drive rejects both again.
	var prodRedrive struct {
		Result struct {
			ID        string `json:"id"`
			RedriveOf string `json:"redrive_of"`
		} `json:"result"`
	}
	out = must("redrive", "--wait", "--wait-timeout", "3m", "--json", prodJob)
	if err := json.Unmarshal([]byte(out), &prodRedrive); err != nil || prodRedrive.Result.RedriveOf != prodJob {
		t.Fatalf("redrive %s: %v\n%s", prodJob, err, out)
	}

	// The fix, and the services started again with it.
	redriveConfig(t, cfgPath, true)
	proc.Stop(t)
	agg.Stop(t)
	proc.Start(t)
	agg.Start(t)

	redrive := func(old string) (id string, read, produced, rejected int64) {
		t.Helper()
		var r struct {
			OK     bool `json:"ok"`
			Result struct {
				ID        string `json:"id"`
				RedriveOf string `json:"redrive_of"`
				Read      int64  `json:"records_read"`
				Produced  int64  `json:"records_produced"`
				Rejected  int64  `json:"records_rejected"`
			} `json:"result"`
		}
		out := must("redrive", "--wait", "--wait-timeout", "3m", "--json", old)
		if err := json.Unmarshal([]byte(out), &r); err != nil || !r.OK || r.Result.RedriveOf != old {
			t.Fatalf("redrive %s: %v\n%s", old, err, out)
		}
		return r.Result.ID, r.Result.Read, r.Result.Produced, r.Result.Rejected
	}
	ndNew, read, produced, rejected := redrive(ndJob)
	if read != 5 || produced != 2 || rejected != 3 {
		t.Fatalf("redrive %s as %s: %d read, %d produced, %d rejected; want 5, 2, 3", ndJob, ndNew, read, produced, rejected)
	}
	csvNew, read, produced, rejected := redrive(csvJob)
	if read != 4 || produced != 2 || rejected != 2 {
		t.Fatalf("redrive %s as %s: %d read, %d produced, %d rejected; want 4, 2, 2", csvJob, csvNew, read, produced, rejected)
	}

	// In the table exactly once, with the fixed declaration's column.
	want := strings.Join([]string{
		"1\tc\t9\t", "12\tmulti\\nline\t12\t", "13\t\t13\t", "2\t\t2\tred", "5\t\t5\tblue", "8\ta\t8\t", "9\t\t9\t",
	}, "\n")
	if got := st.CH.Query(t, "SELECT id, cat, qty, color FROM skuflow.items FINAL ORDER BY id"); got != want {
		t.Fatalf("items FINAL:\n%s\nwant\n%s", got, want)
	}
	if got := st.CH.Query(t, "SELECT id, count() FROM skuflow.items WHERE id IN ('2', '5', '9', '13') GROUP BY id ORDER BY id"); got != "13\t1\n2\t1\n5\t1\n9\t1" {
		t.Fatalf("rows of the re-driven records, before any merge:\n%s", got)
	}
	exact := func() {
		t.Helper()
		for _, q := range [][2]string{
			{"SELECT cat, items FROM skuflow.items_by_cat ORDER BY cat", "SELECT cat, count() FROM skuflow.items FINAL GROUP BY cat ORDER BY cat"},
			{"SELECT name, no_of_products FROM skuflow.products_agg ORDER BY name", "SELECT name, count() FROM skuflow.products FINAL GROUP BY name ORDER BY name"},
		} {
			if agg, final := st.CH.Query(t, q[0]), st.CH.Query(t, q[1]); agg != final {
				t.Fatalf("%s:\n%s\nbut FINAL says\n%s", q[0], agg, final)
			}
		}
	}
	exact()

	// Rejected again, under the new jobs, at their places in the old input.
	for _, w := range []struct{ job, want string }{
		{ndNew, "items.ndjson\t3\tvalidate\nitems.ndjson\t4\tdecode\nitems.ndjson\t7\tredrive"},
		{csvNew, "items.csv\t4\tvalidate\nitems.csv\t5\tdecode"},
		{prodRedrive.Result.ID, "products.csv\t3\tvalidate\nproducts.csv\t4\tdecode"},
	} {
		got := st.CH.Query(t, "SELECT replaceRegexpAll(source, '.*/', ''), line, stage FROM skuflow.ingest_errors FINAL WHERE job = '"+w.job+"' ORDER BY line")
		if got != w.want {
			t.Errorf("rejected again by %s:\n%s\nwant\n%s", w.job, got, w.want)
		}
	}
	var rej []struct {
		Line   int64  `json:"line"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal([]byte(must("errors", "--json", ndNew)), &rej); err != nil || len(rej) != 3 ||
		!strings.Contains(rej[0].Reason, `"qty"`) || !strings.Contains(rej[2].Reason, "16384") {
		t.Fatalf("loader errors %s: %v %+v", ndNew, err, rej)
	}

	// Both jobs show the link: loader status --json, and the API.
	for _, p := range [][2]string{{ndJob, ndNew}, {csvJob, csvNew}, {prodJob, prodRedrive.Result.ID}} {
		var oldS, newS struct {
			RedriveOf  string   `json:"redrive_of"`
			RedrivenBy []string `json:"redriven_by"`
		}
		if err := json.Unmarshal([]byte(must("status", "--json", p[0])), &oldS); err != nil || !slices.Equal(oldS.RedrivenBy, []string{p[1]}) {
			t.Errorf("status %s: %v %+v, want redriven_by [%s]", p[0], err, oldS, p[1])
		}
		if err := json.Unmarshal([]byte(must("status", "--json", p[1])), &newS); err != nil || newS.RedriveOf != p[0] {
			t.Errorf("status %s: %v %+v, want redrive_of %s", p[1], err, newS, p[0])
		}
		a := c.call(t, "GET", "/v1/jobs/"+p[0], "", nil)
		if by, _ := a.JSON()["redriven_by"].([]any); a.Status != 200 || len(by) != 1 || by[0] != p[1] {
			t.Errorf("GET /v1/jobs/%s: %s", p[0], a)
		}
		a = c.call(t, "GET", "/v1/jobs/"+p[1], "", nil)
		if a.Status != 200 || a.JSON()["redrive_of"] != p[0] {
			t.Errorf("GET /v1/jobs/%s: %s", p[1], a)
		}
	}
	if text := must("status", ndJob); !strings.Contains(text, "redriven   by job "+ndNew) {
		t.Errorf("status %s:\n%s", ndJob, text)
	}

	// A second re-drive of a job pushes nothing: refused, naming the first.
	out, stderr, err = loader("redrive", csvJob)
	if err == nil || !strings.Contains(stderr, "re-driven already by job "+csvNew) || !strings.Contains(stderr, "'loader redrive "+csvNew+"'") {
		t.Fatalf("second redrive of %s: %v\n%s\n%s", csvJob, err, out, stderr)
	}
	if n := st.Count(t, "SELECT count() FROM skuflow.ingest_jobs FINAL WHERE redrive_of = '"+csvJob+"'"); n != 1 {
		t.Fatalf("%d jobs re-drive %s, want 1", n, csvJob)
	}
	// What failed again is the new job's to re-drive: still invalid.
	again, read, produced, rejected := redrive(csvNew)
	if read != 2 || produced != 0 || rejected != 2 {
		t.Fatalf("redrive %s as %s: %d read, %d produced, %d rejected; want 2, 0, 2", csvNew, again, read, produced, rejected)
	}
	if got := st.CH.Query(t, "SELECT id, count() FROM skuflow.items WHERE id IN ('2', '5', '9', '13') GROUP BY id ORDER BY id"); got != "13\t1\n2\t1\n5\t1\n9\t1" {
		t.Fatalf("rows of the re-driven records after a re-drive of the re-drive:\n%s", got)
	}
	exact()
}
