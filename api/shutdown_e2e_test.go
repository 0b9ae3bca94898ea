package api_test

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"skuflow/internal/testenv"
)

// SIGTERM while an uploaded file is being pushed: with time to finish, the
// push finishes and its job is produced (then done); with too little, the
// job fails with the reason. Either way the API exits 0 and no job is left
// producing.
func TestShutdownDuringUpload(t *testing.T) {
	for _, c := range []struct {
		name    string
		timeout string
		want    string // the job's state once the API is gone
	}{
		{"time to finish", "2m", "produced"},
		{"too little time", "1ms", "failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := testenv.NewStack(t)
			base, api := st.API(t, "SKUFLOW_API_SHUTDOWN_TIMEOUT="+c.timeout)
			file := testenv.Gen(t, t.TempDir(), "big.ndjson", "--rows", "300000")
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			code, body, _ := call(t, "POST", base+"/v1/files?name=big.ndjson", string(data))
			if code != http.StatusAccepted {
				t.Fatalf("upload: %d %v", code, body)
			}
			id := body["id"].(string)
			api.Stop(t) // fails the test if the API does not exit in time
			if exited, err := api.Exited(); !exited || err != nil {
				t.Fatalf("api exited %v, %v; want a clean exit", exited, err)
			}
			got := st.CH.Query(t, "SELECT state, error FROM skuflow.ingest_jobs FINAL WHERE id = '"+id+"'")
			state, reason, _ := strings.Cut(got, "\t")
			if c.want == "produced" && state != "produced" && state != "done" || c.want == "failed" && state != "failed" {
				t.Fatalf("job %s is %q (%s), want %s", id, state, reason, c.want)
			}
			if state == "failed" && !strings.Contains(reason, "the API stopped before the push finished") {
				t.Fatalf("failed job's reason: %q", reason)
			}
		})
	}
}
