package watcher_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// Links in the inbox to files outside it (the watcher's own environment, a
// private file elsewhere, a link through a hidden link in the inbox) are
// filed in failed/ unread, saying where they lead; a link to a file inside
// the inbox is loaded. Nothing of the outside files reaches a table.
func TestWatchLinksOutsideInbox(t *testing.T) {
	s := testenv.NewStack(t)
	s.Service(t, "processor")
	s.Service(t, "aggregator")
	inbox := t.TempDir()
	w := s.Watcher(t, inbox, inboxEnv...)

	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "secret.ndjson")
	body := `{"sku":"secret-1","name":"hunter2-name"}` + "\nPASSWORD=hunter2\n"
	if err := os.WriteFile(secret, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	inside := filepath.Join(inbox, ".inside.data")
	if err := os.WriteFile(inside, []byte(`{"sku":"inside-1","name":"inside"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// In order: .hop before the link through it, which the watcher may
	// take as soon as it appears (a map's order once made chain.ndjson a
	// dangling link, failed as missing rather than as outside).
	links := [][2]string{
		{"environ.ndjson", "/proc/self/environ"},
		{"secret.ndjson", secret},
		{".hop", secret},
		{"chain.ndjson", filepath.Join(inbox, ".hop")},
		{"inside.ndjson", inside},
	}
	for _, l := range links {
		if err := os.Symlink(l[1], filepath.Join(inbox, l[0])); err != nil {
			t.Fatal(err)
		}
	}
	waitFiled(t, inbox, 4, time.Minute)

	for _, name := range []string{"environ.ndjson", "secret.ndjson", "chain.ndjson"} {
		why, err := os.ReadFile(filepath.Join(inbox, "failed", name+".error.txt"))
		if err != nil {
			t.Errorf("%s was not filed in failed/: %v; done %v; log:\n%s", name, err, names(t, filepath.Join(inbox, "done")), w.Log(40))
			continue
		}
		if !strings.Contains(string(why), "outside the inbox") {
			t.Errorf("%s: the reason does not say it leads outside the inbox: %s", name, why)
		}
	}
	if _, err := os.Stat(filepath.Join(inbox, "done", "inside.ndjson")); err != nil {
		t.Errorf("the link to a file inside the inbox was not loaded: %v; failed %v", err, names(t, filepath.Join(inbox, "failed")))
	}
	if n := s.Count(t, "SELECT count() FROM skuflow.ingest_errors WHERE positionCaseInsensitive(raw, 'hunter2') > 0 OR position(raw, 'SKUFLOW_') > 0"); n != 0 {
		t.Errorf("ingest_errors holds %d rows read from files outside the inbox", n)
	}
	if n := s.Count(t, "SELECT count() FROM skuflow.products WHERE sku = 'secret-1'"); n != 0 {
		t.Errorf("products holds a record read from a file outside the inbox")
	}
	got, _ := os.ReadFile(secret)
	if string(got) != body {
		t.Errorf("the file outside was changed: %q", got)
	}
}
