package watcher_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// Links planted where the watcher writes its notes and companions, under
// the temporary names it used to use and under the final names, lead to
// files outside the inbox; none of those files is written.
func TestWatchPlantedLinks(t *testing.T) {
	s := testenv.NewStack(t)
	s.Service(t, "processor")
	s.Service(t, "aggregator")
	inbox := t.TempDir()
	w := s.Watcher(t, inbox, inboxEnv...)

	victims := t.TempDir()
	planted := map[string]string{
		"done/.x.ndjson.job.json.tmp":     "v1",
		"done/x.ndjson.job.json":          "v2",
		"processing/..x.ndjson.job.tmp":   "v3",
		"processing/.x.ndjson.job":        "v4",
		"failed/.bad.json.error.txt.tmp":  "v5",
		"failed/bad.json.error.txt":       "v6",
		"processing/..bad.json.job.tmp":   "v7",
		"processing/.bad.json.job":        "v8",
		"done/.x.ndjson.job.json.missing": "v9", // a link to a file not there yet
	}
	for at, v := range planted {
		target := filepath.Join(victims, v)
		if v != "v9" {
			if err := os.WriteFile(target, []byte("precious "+v), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Symlink(target, filepath.Join(inbox, at)); err != nil {
			t.Fatal(err)
		}
	}
	staging := t.TempDir()
	files := map[string]string{
		"x.ndjson": `{"sku":"x-1","name":"x"}` + "\n",
		"bad.json": "[\n{\"sku\":\"bad-1\" \"name\":\"b\"}\n]\n",
	}
	for name, body := range files {
		p := filepath.Join(staging, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p, filepath.Join(inbox, name)); err != nil {
			t.Fatal(err)
		}
	}
	waitFiled(t, inbox, 2, time.Minute)

	for at, v := range planted {
		got, err := os.ReadFile(filepath.Join(victims, v))
		if v == "v9" {
			if err == nil {
				t.Errorf("%s was created through the link %s", v, at)
			}
			continue
		}
		if err != nil || string(got) != "precious "+v {
			t.Errorf("%s, planted as %s, now holds %q (%v)", v, at, got, err)
		}
	}
	for _, p := range []string{"done/x.ndjson", "failed/bad.json"} {
		if _, err := os.Lstat(filepath.Join(inbox, p)); err != nil {
			t.Errorf("%s: %v; log:\n%s", p, err, w.Log(30))
		}
	}
}
