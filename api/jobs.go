package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"skuflow/config"
	"skuflow/jobs"
)

// jobAnswer is a job as the API shows it: the job store's row, and while
// it loads, how far each consumer group is behind it.
type jobAnswer struct {
	*jobs.Job
	Progress []jobs.GroupProgress `json:"progress,omitempty"`
	Location string               `json:"location"`
}

func jobView(j *jobs.Job, progress []jobs.GroupProgress) jobAnswer {
	if j.Type == "" {
		j.Type = config.BuiltinType
	}
	return jobAnswer{Job: j, Progress: progress, Location: "/v1/jobs/" + j.ID}
}

// listJobs answers the newest jobs, filtered by state and type, a page at
// a time: next is the cursor of the page after.
func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := limitParam(q.Get("limit"), 50, 1000)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_limit", err.Error())
		return
	}
	f := jobs.Filter{State: jobs.State(q.Get("state")), Type: q.Get("type"), Before: q.Get("cursor")}
	if f.Before != "" {
		if err := jobs.CheckID(f.Before); err != nil {
			writeError(w, http.StatusBadRequest, "bad_cursor", err.Error())
			return
		}
	}
	list, err := s.o.Jobs.List(r.Context(), f, limit)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	out := struct {
		Jobs []jobAnswer `json:"jobs"`
		Next string      `json:"next,omitempty"`
	}{Jobs: []jobAnswer{}}
	for _, j := range list {
		out.Jobs = append(out.Jobs, jobView(j, nil))
	}
	if len(list) == limit {
		out.Next = list[len(list)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

// getJob answers one job: 200 once done, 425 Too Early with its progress
// and Retry-After while it produces or loads, 422 with its error once it
// failed, 404 for an id the store does not hold. (The seed's task API
// answered 406 for a failed task; 422 says what happened: the request was
// fine, the content could not be processed.)
func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := jobs.CheckID(id); err != nil {
		writeError(w, http.StatusNotFound, "not_found", err.Error())
		return
	}
	j, err := s.o.Jobs.Get(r.Context(), id)
	if errors.Is(err, jobs.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no job %s", id))
		return
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	var progress []jobs.GroupProgress
	if j.State == jobs.Produced {
		progress = s.settle(r.Context(), j)
	}
	switch j.State {
	case jobs.Done:
		writeJSON(w, http.StatusOK, jobView(j, nil))
	case jobs.Failed:
		writeJSON(w, http.StatusUnprocessableEntity, struct {
			apiError
			jobAnswer
		}{apiError{errorBody{Code: "job_failed", Message: j.Error, Job: j.ID}}, jobView(j, nil)})
	default:
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusTooEarly, jobView(j, progress))
	}
}

// settle brings a produced job up to date with the consumer groups: it
// may be done now (then j says so). It returns how far each group is
// behind, or nothing when the groups cannot be read.
func (s *Server) settle(ctx context.Context, j *jobs.Job) []jobs.GroupProgress {
	name := j.Type
	if name == "" {
		name = config.BuiltinType
	}
	t := s.o.Types[name]
	if t == nil || t.Committed == nil {
		return nil
	}
	c, err := t.Committed(ctx, j.Topic)
	if err != nil {
		return nil
	}
	p, err := s.o.Jobs.Settle(ctx, c, j)
	if err != nil {
		return nil
	}
	if j.State == jobs.Done {
		s.feed.Publish(Event{Kind: "job", Job: j})
	}
	return p
}

// jobErrors answers a job's rejected records, a page at a time.
func (s *Server) jobErrors(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := jobs.CheckID(id); err != nil {
		writeError(w, http.StatusNotFound, "not_found", err.Error())
		return
	}
	limit, err := limitParam(r.URL.Query().Get("limit"), 100, 1000)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_limit", err.Error())
		return
	}
	if _, err := s.o.Jobs.Get(r.Context(), id); errors.Is(err, jobs.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no job %s", id))
		return
	} else if err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	var after *jobs.ErrorPlace
	if c := r.URL.Query().Get("after"); c != "" {
		after = new(jobs.ErrorPlace)
		if err := decodeErrorCursor(c, after); err != nil {
			writeError(w, http.StatusBadRequest, "bad_cursor", "after is not a cursor this API gave")
			return
		}
	}
	rows, total, err := s.o.Jobs.ErrorsAfter(r.Context(), id, after, limit)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	out := struct {
		Total  int64           `json:"total"`
		Errors []jobs.Rejected `json:"errors"`
		Next   string          `json:"next,omitempty"`
	}{Total: total, Errors: []jobs.Rejected{}}
	for _, e := range rows {
		out.Errors = append(out.Errors, jobs.RejectedOf(e))
	}
	if len(rows) == limit {
		out.Next = encodeErrorCursor(jobs.Place(rows[len(rows)-1]))
	}
	writeJSON(w, http.StatusOK, out)
}

// limitParam reads a page size: def when empty, at most most.
func limitParam(v string, def, most int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		return 0, fmt.Errorf("limit must be a number from 1 to %d, got %q", most, v)
	}
	return n, nil
}

// encodeErrorCursor makes an opaque cursor of v: base64url of its JSON.
func encodeErrorCursor(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeErrorCursor reads a cursor encodeErrorCursor made into v.
func decodeErrorCursor(c string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
