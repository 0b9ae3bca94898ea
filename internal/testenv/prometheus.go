package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PrometheusServer is a Prometheus server of one test (Debian's
// `prometheus` package), on a free loopback port with its data in a
// temporary folder.
type PrometheusServer struct {
	// URL is the server's base URL, "http://127.0.0.1:port".
	URL string
	// Dir holds the server's data (Dir/data) and its log
	// (Dir/prometheus.log).
	Dir string

	proc *process
}

// Prometheus starts prometheus with the configuration file config (its
// rule_files are relative to its folder), waits until it is ready, and
// stops it by pid when t ends. The test fails if prometheus is not
// installed.
func Prometheus(t testing.TB, config string) *PrometheusServer {
	t.Helper()
	bin := program(t, "prometheus", "prometheus")
	dir := t.TempDir()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
	p := &PrometheusServer{
		URL: "http://" + addr,
		Dir: dir,
		proc: &process{
			name: "prometheus",
			path: bin,
			args: []string{
				"--config.file=" + config,
				"--storage.tsdb.path=" + filepath.Join(dir, "data"),
				"--web.listen-address=" + addr,
			},
			dir:     dir,
			env:     childEnv(),
			logPath: filepath.Join(dir, "prometheus.log"),
		},
	}
	p.proc.cleanup(t)
	p.proc.startReady(t, p.ready, p.URL)
	return p
}

// ready reports whether /-/ready answers 200: the TSDB is open and the
// configuration loaded.
func (p *PrometheusServer) ready() bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(p.URL + "/-/ready")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Pid returns the server's process id, or 0 once it stopped.
func (p *PrometheusServer) Pid() int { return p.proc.pid() }

// Stop stops the server with SIGTERM and waits for it to exit.
func (p *PrometheusServer) Stop(t testing.TB) {
	t.Helper()
	if p.proc.stop(syscall.SIGTERM, stopGrace) {
		t.Errorf("testenv: prometheus did not stop within %s of SIGTERM and was killed", stopGrace)
	}
}

// PromSample is one series of an instant query's result.
type PromSample struct {
	Metric map[string]string
	Value  float64
}

// PromSeries is one series of a range query's result.
type PromSeries struct {
	Metric map[string]string
	Times  []time.Time
	Values []float64
}

// PromError is an error Prometheus' HTTP API answered with: a query that
// does not parse (errorType "bad_data") or fails to evaluate.
type PromError struct {
	Status    int
	ErrorType string
	Message   string
}

func (e *PromError) Error() string {
	return fmt.Sprintf("prometheus answered %d %s: %s", e.Status, e.ErrorType, e.Message)
}

// API calls GET /api/v1/<path> with params and decodes the envelope's data
// into data. An answer with status "error" is a *PromError.
func (p *PrometheusServer) API(ctx context.Context, path string, params url.Values, data any) error {
	u := p.URL + "/api/v1/" + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("prometheus %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("prometheus %s: %w", path, err)
	}
	var env struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("prometheus %s: %d %q: %w", path, resp.StatusCode, abbreviate(string(body), 200), err)
	}
	if env.Status != "success" {
		return &PromError{Status: resp.StatusCode, ErrorType: env.ErrorType, Message: env.Error}
	}
	if data == nil {
		return nil
	}
	if err := json.Unmarshal(env.Data, data); err != nil {
		return fmt.Errorf("prometheus %s: data: %w", path, err)
	}
	return nil
}

// Query evaluates expr now. A scalar result is one sample without labels.
func (p *PrometheusServer) Query(ctx context.Context, expr string) ([]PromSample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.API(ctx, "query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	switch data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(data.Result, &vec); err != nil {
			return nil, fmt.Errorf("query %s: %w", expr, err)
		}
		out := make([]PromSample, 0, len(vec))
		for _, s := range vec {
			v, err := promValue(s.Value[1])
			if err != nil {
				return nil, fmt.Errorf("query %s: %w", expr, err)
			}
			out = append(out, PromSample{Metric: s.Metric, Value: v})
		}
		return out, nil
	case "scalar":
		var sc [2]any
		if err := json.Unmarshal(data.Result, &sc); err != nil {
			return nil, fmt.Errorf("query %s: %w", expr, err)
		}
		v, err := promValue(sc[1])
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", expr, err)
		}
		return []PromSample{{Metric: map[string]string{}, Value: v}}, nil
	}
	return nil, fmt.Errorf("query %s: result of type %q", expr, data.ResultType)
}

// QueryRange evaluates expr at every step from start to end.
func (p *PrometheusServer) QueryRange(ctx context.Context, expr string, start, end time.Time, step time.Duration) ([]PromSeries, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	}
	params := url.Values{
		"query": {expr},
		"start": {strconv.FormatFloat(float64(start.UnixMilli())/1000, 'f', 3, 64)},
		"end":   {strconv.FormatFloat(float64(end.UnixMilli())/1000, 'f', 3, 64)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	if err := p.API(ctx, "query_range", params, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "matrix" {
		return nil, fmt.Errorf("query_range %s: result of type %q", expr, data.ResultType)
	}
	out := make([]PromSeries, 0, len(data.Result))
	for _, r := range data.Result {
		s := PromSeries{Metric: r.Metric}
		for _, tv := range r.Values {
			ts, ok := tv[0].(float64)
			if !ok {
				return nil, fmt.Errorf("query_range %s: time %v", expr, tv[0])
			}
			v, err := promValue(tv[1])
			if err != nil {
				return nil, fmt.Errorf("query_range %s: %w", expr, err)
			}
			s.Times = append(s.Times, time.UnixMilli(int64(math.Round(ts*1000))))
			s.Values = append(s.Values, v)
		}
		out = append(out, s)
	}
	return out, nil
}

// promValue reads a sample value, which the API writes as a string
// ("1.5", "NaN", "+Inf").
func promValue(v any) (float64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", v)
	}
	return strconv.ParseFloat(s, 64)
}

// Promtool runs Debian's promtool with args and returns its combined
// output; the test fails if promtool is not installed.
func Promtool(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(program(t, "promtool", "prometheus"), args...)
	cmd.Env = childEnv()
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
