package api_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"skuflow/api"
	"skuflow/internal/testenv"
	"skuflow/jobs"
)

// The feed tells of jobs that the loader pushes, not only the API's own:
// the API follows the job store, settles the job once both groups have
// passed it, and says so. Records POSTed to the API follow at once.
func TestFeedFollowsLoaderJobs(t *testing.T) {
	st := testenv.NewStack(t)
	st.Service(t, "processor")
	st.Service(t, "aggregator")
	base, _ := st.API(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/v1/feed", nil)
	if err != nil {
		t.Fatalf("dial the feed: %v", err)
	}
	defer c.CloseNow()
	events := make(chan api.Event, 1024)
	go func() {
		defer close(events)
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			var e api.Event
			if err := json.Unmarshal(b, &e); err != nil {
				t.Errorf("not an event: %q", b)
				return
			}
			events <- e
		}
	}()
	next := func(what string, match func(api.Event) bool) api.Event {
		t.Helper()
		for {
			select {
			case e, ok := <-events:
				if !ok {
					t.Fatalf("the feed ended while waiting for %s", what)
				}
				if match(e) {
					return e
				}
			case <-ctx.Done():
				t.Fatalf("no %s in the feed", what)
			}
		}
	}
	next("hello", func(e api.Event) bool { return e.Kind == "hello" })
	// The feed's first look at the store learns the jobs there already.
	time.Sleep(2 * time.Second)

	file := filepath.Join(t.TempDir(), "pushed.csv")
	if err := os.WriteFile(file, []byte("sku,name\nf1,Fig\nf2,Fennel\nf3,Fig\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, stderr, err := st.Loader(t, "push", "--no-progress", file); err != nil {
		t.Fatalf("loader push: %v\n%s\n%s", err, out, stderr)
	}
	done := next("the loader's job done", func(e api.Event) bool {
		return e.Kind == "job" && e.Job != nil && strings.HasSuffix(e.Job.Source, "pushed.csv") && e.Job.State == jobs.Done
	})
	if done.Job.Produced != 3 || done.Job.FinishedAt.IsZero() || done.At.IsZero() {
		t.Fatalf("the done job in the feed: %+v", done.Job)
	}
	code, body, _ := call(t, "GET", base+"/v1/jobs/"+done.Job.ID, "")
	if code != 200 || body["state"] != "done" {
		t.Fatalf("GET the job the feed called done: %d %v", code, body)
	}

	if code, body, _ := call(t, "POST", base+"/v1/records/products", `{"sku":"f4","name":"Fig"}`); code != 202 {
		t.Fatalf("POST a record: %d %v", code, body)
	}
	rec := next("the POSTed record", func(e api.Event) bool { return e.Kind == "records" && strings.Contains(e.Sample, `"f4"`) })
	if rec.Type != "products" || rec.Records != 1 {
		t.Fatalf("records event %+v", rec)
	}
}
