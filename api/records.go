package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"skuflow/producer"
)

// recordsTimeout bounds how long POST /v1/records waits for Kafka.
const recordsTimeout = 10 * time.Second

// reject is one record of a request that was refused, and why.
type reject struct {
	Line   int64  `json:"line"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// postRecords takes one JSON object, or NDJSON, of records of a type,
// validates them as the loader does, and answers 202 once Kafka holds
// every one (acks=all), with where each went. A request with any invalid
// record is refused whole (400, naming each bad record's line, field and
// reason), and nothing of it is produced: fixing and sending it again never
// doubles the good ones.
func (s *Server) postRecords(w http.ResponseWriter, r *http.Request) {
	t := s.typeOf(w, r.PathValue("type"))
	if t == nil {
		return
	}
	a := s.o.Config.API
	limited := http.MaxBytesReader(w, io.NopCloser(idleReader{r: r.Body, rc: http.NewResponseController(w), idle: a.BodyIdleTimeout}), int64(a.MaxRecordsBody))
	body, err := io.ReadAll(limited)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body is larger than api.max_records_body (%d bytes); upload a file for bulk loads", a.MaxRecordsBody))
			return
		}
		writeError(w, http.StatusBadRequest, "bad_body", err.Error())
		return
	}
	id := "api-" + s.o.Now().UTC().Format("20060102T150405.000000Z")
	// A client waits for this answer: Kafka gets recordsTimeout to take
	// the records, not the loader's minutes, and an answer of 503 then
	// says to send them again (the table keeps one row per key).
	ctx, cancel := context.WithTimeout(r.Context(), recordsTimeout)
	defer cancel()
	produced, rejected, err := t.Pusher.ProduceRecords(ctx, body, id, "POST /v1/records/"+t.Schema.Name, a.MaxRecords)
	switch {
	case errors.Is(err, producer.ErrTooManyRecords):
		writeError(w, http.StatusRequestEntityTooLarge, "too_many_records", err.Error())
		return
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	case len(rejected) > 0:
		countRecords(t.Schema.Name, 0, rejected)
		out := apiError{errorBody{Code: "invalid_records", Message: fmt.Sprintf("%d records are invalid; none was accepted", len(rejected))}}
		for _, rj := range rejected {
			out.Error.Records = append(out.Error.Records, reject{Line: rj.Line, Field: field(rj.Reason), Reason: rj.Reason})
		}
		writeJSON(w, http.StatusBadRequest, out)
		return
	}
	countRecords(t.Schema.Name, len(produced), nil)
	s.feed.Publish(Event{Kind: "records", Type: t.Schema.Name, Records: len(produced), Sample: sample(body), At: time.Now()})
	writeJSON(w, http.StatusAccepted, map[string]any{"type": t.Schema.Name, "accepted": len(produced), "records": produced})
}

// field reads the field a validation reason names (`field "ts": ...`).
func field(reason string) string {
	rest, ok := strings.CutPrefix(reason, `field "`)
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, `"`)
	return name
}

// sample is the start of a body, for the live feed.
func sample(body []byte) string {
	const most = 300
	line, _, _ := strings.Cut(string(body), "\n")
	if len(line) > most {
		line = line[:most] + "..."
	}
	return line
}
