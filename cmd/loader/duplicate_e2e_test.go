package main_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"skuflow/internal/testenv"
)

// Refusing content already loaded keeps order in view: Monday's file,
// pushed again after Tuesday's changed the same skus, is refused, and the
// refusal names Tuesday's job as loaded since, so the user knows that
// --force would bring Monday's values back.
func TestRefusalNamesLaterJobs(t *testing.T) {
	s := testenv.NewStack(t)
	dir := t.TempDir()
	monday, tuesday := filepath.Join(dir, "monday.ndjson"), filepath.Join(dir, "tuesday.ndjson")
	os.WriteFile(monday, []byte(`{"sku":"a","name":"mon"}`+"\n"+`{"sku":"b","name":"mon"}`+"\n"), 0o644)
	os.WriteFile(tuesday, []byte(`{"sku":"a","name":"tue"}`+"\n"+`{"sku":"b","name":"tue"}`+"\n"), 0o644)

	a := push(t, s, monday).Results[0]
	b := push(t, s, tuesday).Results[0]
	if a.State != "produced" || b.State != "produced" {
		t.Fatalf("pushes: %+v, %+v", a, b)
	}

	_, stderr, code := run(t, s.Env, nil, "push", "--no-progress", monday)
	if code != 0 || !strings.Contains(stderr, "refused") || !strings.Contains(stderr, "job "+a.ID) {
		t.Fatalf("push monday again: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "loaded since: job "+b.ID+" ("+tuesday) || !strings.Contains(stderr, "--force would bring") {
		t.Fatalf("the refusal does not name %s as loaded since:\n%s", b.ID, stderr)
	}
	r := push(t, s, monday).Results[0]
	if r.RefusedBy != a.ID || !slices.Equal(r.LoadedSince, []string{b.ID}) || !strings.Contains(r.Error, b.ID) {
		t.Fatalf("--json: refused by %q, loaded since %v, error %q; want %s and [%s]", r.RefusedBy, r.LoadedSince, r.Error, a.ID, b.ID)
	}

	// Pushing Tuesday's again: nothing was loaded since, and the refusal
	// says nothing of later jobs.
	_, stderr, _ = run(t, s.Env, nil, "push", "--no-progress", tuesday)
	if !strings.Contains(stderr, "job "+b.ID) || strings.Contains(stderr, "loaded since") {
		t.Fatalf("push tuesday again:\n%s", stderr)
	}
}
