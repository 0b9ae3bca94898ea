package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"skuflow/jobs"
	"skuflow/producer"
)

// postFile takes a file (the raw body, or the first file of a multipart
// form, as the page sends it), streams it to the spool folder with a size
// cap while hashing it, and pushes it as a job through the loader's
// pipeline: 202 with the job once its row exists, 409 naming the earlier
// job when the same content was loaded, 413 past the cap, 415 for content
// no reader takes. The push goes on after the answer; GET /v1/jobs/{id}
// follows it.
func (s *Server) postFile(w http.ResponseWriter, r *http.Request) {
	t := s.typeOf(w, r.URL.Query().Get("type"))
	if t == nil {
		return
	}
	name := r.URL.Query().Get("name")
	force := r.URL.Query().Get("force") == "true"
	a := s.o.Config.API
	// The cap and the idle cut-off hold for the whole body, the parts of
	// a form before its file too.
	r.Body = http.MaxBytesReader(w, io.NopCloser(idleReader{r: r.Body, rc: http.NewResponseController(w), idle: a.BodyIdleTimeout}), int64(a.MaxUploadBytes))
	body, filename, err := uploadBody(r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the upload is larger than api.max_upload_bytes (%d bytes)", a.MaxUploadBytes))
			return
		}
		writeError(w, http.StatusBadRequest, "bad_upload", err.Error())
		return
	}
	if name == "" {
		name = filename
	}
	if name == "" {
		name = "upload"
	}
	name = filepath.Base(name)
	if err := checkName(name); err != nil {
		writeError(w, http.StatusBadRequest, "bad_name", err.Error())
		return
	}
	if !s.uploads.TryAcquire() {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "busy", fmt.Sprintf("%d uploads are being received or pushed (api.max_uploads); try again shortly", a.MaxUploads))
		return
	}
	// The slot is held until the push ends: a spooled file is disk until
	// then.
	keepSlot := false
	defer func() {
		if !keepSlot {
			s.uploads.Release()
		}
	}()
	// The spool file is named by the server alone: the upload's name is
	// only the job's source.
	_ = os.MkdirAll(a.SpoolDir, 0o700) // SweepSpool made it; a test server may not have
	f, err := os.CreateTemp(a.SpoolDir, "upload-*")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "spool", "cannot write to the spool folder (api.spool_dir); see the API's log")
		s.o.Log.Error("spool", "err", err)
		return
	}
	path := f.Name()
	keep := false
	defer func() {
		if !keep {
			os.Remove(path)
		}
	}()
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the file is larger than api.max_upload_bytes (%d bytes)", a.MaxUploadBytes))
			return
		}
		writeError(w, http.StatusBadRequest, "upload_failed", fmt.Sprintf("reading the upload: %v", err))
		return
	}
	src, err := producer.FileSource(path, name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "spool", err.Error())
		return
	}
	// What no reader takes is refused now, not as a failed job.
	if err := readable(r.Context(), src); err != nil {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported", fmt.Sprintf("%s: %v (send JSON, NDJSON or CSV as UTF-8 text, optionally gzip or zstd)", name, err))
		return
	}

	keepSlot = true // the push below releases it
	started := make(chan jobs.Job, 1)
	ended := make(chan error, 1)
	keep = true
	s.pushes.Add(1)
	go func() {
		defer s.pushes.Done()
		defer s.uploads.Release()
		defer os.Remove(path)
		saved := false
		res, err := t.Pusher.Push(s.pushCtx, src, producer.PushOptions{
			SHA256: hex.EncodeToString(h.Sum(nil)),
			Force:  force,
			Started: func(j jobs.Job) {
				saved = true
				started <- j
				s.feed.Publish(Event{Kind: "job", Job: &j})
			},
		})
		countPush(res)
		// A refused push has an id but no job: the feed tells of jobs only.
		if saved && res != nil {
			j := res.Job
			s.feed.Publish(Event{Kind: "job", Job: &j})
		}
		ended <- err
	}()
	accepted := func(j jobs.Job) {
		w.Header().Set("Location", "/v1/jobs/"+j.ID)
		writeJSON(w, http.StatusAccepted, jobView(&j, nil))
	}
	select {
	case j := <-started:
		accepted(j)
	case err := <-ended:
		// A push that started its job and ended before this select (a
		// small file, or one that failed early) has both ready, and select
		// picks at random: the job is the answer; GET /v1/jobs/{id} tells
		// how it ended. Started runs before Push returns, so it is there.
		select {
		case j := <-started:
			accepted(j)
			return
		default:
		}
		var dup *producer.DuplicateError
		switch {
		case errors.As(err, &dup):
			writeJSON(w, http.StatusConflict, apiError{errorBody{Code: "duplicate", Message: err.Error(), Job: dup.Earlier.ID}})
		case errors.Is(err, producer.ErrUnavailable):
			writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		default:
			writeError(w, http.StatusUnprocessableEntity, "push_failed", fmt.Sprint(err))
		}
	case <-r.Context().Done():
	}
}

// readable reports why no reader would take src: a format none detects,
// or content that is not text. The CSV reader takes any first line with a
// comma for a header, so a binary file would otherwise become a job that
// rejects every "record".
func readable(ctx context.Context, src producer.Source) error {
	in, err := producer.Open(ctx, src, producer.FormatAuto)
	if err != nil {
		return err
	}
	defer in.Close()
	head := make([]byte, 4096)
	n, err := io.ReadFull(in, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("reading it: %w", err)
	}
	control := 0
	for _, b := range head[:n] {
		switch {
		case b == 0:
			return errors.New("binary content: a NUL byte in its first 4KiB")
		case b < 0x20 && b != '\t' && b != '\n' && b != '\r' && b != '\f', b == 0x7f:
			control++
		}
	}
	// Text has next to none; random bytes about one in eight.
	if control*100 > n {
		return fmt.Errorf("binary content: %d control bytes in its first %d", control, n)
	}
	return nil
}

// uploadBody returns the file of a request: its body, or for a multipart
// form its first file part and that part's file name.
func uploadBody(r *http.Request) (io.Reader, string, error) {
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if !strings.HasPrefix(mt, "multipart/") {
		return r.Body, "", nil
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			return nil, "", fmt.Errorf("a multipart upload needs a file part: %w", err)
		}
		if p.FileName() != "" {
			return p, p.FileName(), nil
		}
	}
}

// idleReader cuts off a body that sends nothing for idle: every read
// moves the connection's read deadline on.
type idleReader struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
}

func (i idleReader) Read(p []byte) (int, error) {
	_ = i.rc.SetReadDeadline(time.Now().Add(i.idle))
	return i.r.Read(p)
}

// checkName refuses an upload's name that cannot be a job's source: too
// long, or with control characters.
func checkName(name string) error {
	if len(name) > 255 || name == "." || name == "/" || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("name %q is not a file name (at most 255 bytes, no control characters)", name)
	}
	return nil
}

// slots bounds how many uploads are received or pushed at once.
type slots chan struct{}

// TryAcquire takes a slot if one is free.
func (s slots) TryAcquire() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
		return false
	}
}

// Release frees a slot.
func (s slots) Release() { <-s }
