package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

func call(t *testing.T, method, url, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %q", method, url, resp.StatusCode, data)
	}
	return resp.StatusCode, out, resp.Header
}

// An upload goes through the loader's pipeline to done; a second upload
// of the same content is refused naming the first job; records POSTed are
// acknowledged, and a bad one refuses the request whole.
func TestUploadAndRecords(t *testing.T) {
	st := testenv.NewStack(t)
	st.Service(t, "processor")
	st.Service(t, "aggregator")
	base, _ := st.API(t)

	csv := "sku,name\na,Anna\nb,Bert\n"
	code, body, hdr := call(t, "POST", base+"/v1/files?name=p.csv", csv)
	if code != http.StatusAccepted || hdr.Get("Location") == "" {
		t.Fatalf("upload: %d %v", code, body)
	}
	loc := hdr.Get("Location")
	deadline := time.Now().Add(time.Minute)
	for {
		code, body, hdr = call(t, "GET", base+loc, "")
		if code == http.StatusOK {
			break
		}
		if code != http.StatusTooEarly || hdr.Get("Retry-After") == "" || time.Now().After(deadline) {
			t.Fatalf("job: %d %v", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if body["state"] != "done" || body["records_produced"] != float64(2) {
		t.Fatalf("done job: %v", body)
	}
	code, body, _ = call(t, "POST", base+"/v1/files?name=again.csv", csv)
	if e, _ := body["error"].(map[string]any); code != http.StatusConflict || e["job"] != strings.TrimPrefix(loc, "/v1/jobs/") {
		t.Fatalf("duplicate: %d %v", code, body)
	}
	code, body, _ = call(t, "POST", base+"/v1/records/products", `{"sku":"c","name":"Cleo"}`+"\n"+`{"sku":"d"}`)
	if code != http.StatusAccepted || body["accepted"] != float64(2) {
		t.Fatalf("records: %d %v", code, body)
	}
	code, body, _ = call(t, "POST", base+"/v1/records/products", `{"sku":"e"}`+"\n"+`{"name":"no sku"}`)
	if e, _ := body["error"].(map[string]any); code != http.StatusBadRequest || !strings.Contains(toJSON(e), `"line": 2`) {
		t.Fatalf("bad records: %d %v", code, body)
	}
	st.WaitCount(t, "SELECT count() FROM skuflow.products FINAL WHERE sku IN ('a', 'b', 'c', 'd')", 4, time.Minute)
	if n := st.Count(t, "SELECT count() FROM skuflow.products WHERE sku = 'e'"); n != 0 {
		t.Fatalf("a record of a refused request was produced")
	}
}

func toJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// A job's rejected records come a page at a time, each page after the
// cursor of the one before, every record once.
func TestJobErrorsPaged(t *testing.T) {
	st := testenv.NewStack(t)
	base, _ := st.API(t)
	var b strings.Builder
	for i := range 25 {
		if i%5 == 0 {
			b.WriteString(`{"sku":"ok` + string(rune('a'+i)) + `"}` + "\n")
		} else {
			b.WriteString(`{"name":"no sku"}` + "\n")
		}
	}
	code, body, _ := call(t, "POST", base+"/v1/files?name=bad.ndjson", b.String())
	if code != http.StatusAccepted {
		t.Fatalf("upload: %d %v", code, body)
	}
	id := body["id"].(string)
	st.WaitCount(t, "SELECT count() FROM skuflow.ingest_errors WHERE job = '"+id+"'", 20, time.Minute)
	seen := map[float64]bool{}
	next := ""
	for pages := 0; ; pages++ {
		url := base + "/v1/jobs/" + id + "/errors?limit=7"
		if next != "" {
			url += "&after=" + next
		}
		code, body, _ := call(t, "GET", url, "")
		if code != http.StatusOK || body["total"] != float64(20) {
			t.Fatalf("errors page %d: %d %v", pages, code, body)
		}
		for _, e := range body["errors"].([]any) {
			line := e.(map[string]any)["line"].(float64)
			if seen[line] {
				t.Fatalf("line %v on two pages", line)
			}
			seen[line] = true
		}
		n, _ := body["next"].(string)
		if n == "" {
			break
		}
		next = n
	}
	if len(seen) != 20 {
		t.Fatalf("%d rejected records seen, want 20", len(seen))
	}
	if code, _, _ := call(t, "GET", base+"/v1/jobs/"+id+"/errors?after=!!", ""); code != http.StatusBadRequest {
		t.Fatalf("a bad cursor: %d", code)
	}
}
