package observability_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"skuflow/internal/testenv"
)

// dashboardFile is the dashboard Grafana provisions.
const dashboardFile = "deploy/grafana/provisioning/dashboards/skuflow-overview.json"

// The parts of a Grafana dashboard the checks read.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string     `json:"name"`
			Type       string     `json:"type"`
			Datasource datasource `json:"datasource"`
			Definition string     `json:"definition"`
			AllValue   string     `json:"allValue"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID          int        `json:"id"`
	Type        string     `json:"type"`
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Datasource  datasource `json:"datasource"`
	GridPos     struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets     []target `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

type target struct {
	Datasource   datasource `json:"datasource"`
	Expr         string     `json:"expr"`
	LegendFormat string     `json:"legendFormat"`
	RefID        string     `json:"refId"`
	Instant      bool       `json:"instant"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func readDashboard(t testing.TB) dashboard {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// panelQuery is one PromQL expression of the dashboard, and where it is.
type panelQuery struct {
	Panel, RefID, Legend string
	Expr                 string
	Instant              bool
	Unit                 string
}

func (q panelQuery) String() string { return q.Panel + "/" + q.RefID + ": " + q.Expr }

// queries returns every target's expression, in panel order.
func (d dashboard) queries() []panelQuery {
	var out []panelQuery
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, panelQuery{Panel: p.Title, RefID: tg.RefID, Legend: tg.LegendFormat, Expr: tg.Expr, Instant: tg.Instant, Unit: p.FieldConfig.Defaults.Unit})
		}
	}
	return out
}

// grafanaVars are the values Grafana gives the dashboard's variables when
// it sends a query to Prometheus: every type ("All" is allValue, a regex),
// and the intervals it computes from the scrape interval and time range.
type grafanaVars struct {
	RateInterval string // $__rate_interval
	Range        string // $__range
}

var grafanaVar = regexp.MustCompile(`\$\{?(__rate_interval|__range|type)\}?`)

// expand replaces the variables in expr as Grafana would.
func (v grafanaVars) expand(expr string) string {
	return grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		switch strings.Trim(m, "${}") {
		case "__rate_interval":
			return v.RateInterval
		case "__range":
			return v.Range
		}
		return ".*" // $type is "All"
	})
}

// measured splits an alert's expression, as Prometheus prints it, into
// what it measures: the operands of its top-level and/or/unless, and of
// each operand's comparison the sides that are not a number. Each must
// return series on a healthy stack (a comparison only filters them), or
// the alert could never fire: a metric misspelt, a label never set.
func measured(expr string) []string {
	var out []string
	for _, operand := range splitTop(expr, []string{" and ", " or ", " unless "}) {
		operand = strings.TrimSpace(trimModifiers(operand))
		for _, side := range splitTop(operand, []string{" == ", " != ", " >= ", " <= ", " > ", " < "}) {
			side = strings.TrimSpace(trimModifiers(side))
			if side != "" && !numberLiteral.MatchString(side) {
				out = append(out, side)
			}
		}
	}
	return out
}

var numberLiteral = regexp.MustCompile(`^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$|^[-+]?(Inf|NaN)$`)

// trimModifiers drops the modifiers a binary operator leaves at the start
// of its right operand: bool, on (...), ignoring (...), group_left (...),
// group_right (...).
func trimModifiers(s string) string {
	for {
		s = strings.TrimLeft(s, " \n\t")
		var cut bool
		for _, kw := range []string{"bool", "on", "ignoring", "group_left", "group_right"} {
			rest, ok := strings.CutPrefix(s, kw)
			if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '(') {
				continue
			}
			rest = strings.TrimLeft(rest, " ")
			if strings.HasPrefix(rest, "(") {
				end := closing(rest)
				if end < 0 {
					return s
				}
				rest = rest[end+1:]
			}
			s, cut = rest, true
			break
		}
		if !cut {
			return s
		}
	}
}

// closing returns the index of the parenthesis closing s[0], or -1.
func closing(s string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// splitTop splits s at each of seps found outside parentheses, braces,
// brackets and strings.
func splitTop(s string, seps []string) []string {
	var out []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
			continue
		case c == '"' || c == '\'' || c == '`':
			quote = c
			continue
		case c == '(' || c == '{' || c == '[':
			depth++
			continue
		case c == ')' || c == '}' || c == ']':
			depth--
			continue
		}
		if depth != 0 {
			continue
		}
		for _, sep := range seps {
			if strings.HasPrefix(s[i:], sep) {
				out = append(out, s[start:i])
				i += len(sep) - 1
				start = i + 1
				break
			}
		}
	}
	return append(out, s[start:])
}

func TestMeasured(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up{job=~"processor|api"} == 0`, []string{`up{job=~"processor|api"}`}},
		{`sum by (job, type) (skuflow_consumer_lag_records) > 1e+06`, []string{`sum by (job, type) (skuflow_consumer_lag_records)`}},
		{`max by (type) (skuflow_jobs{state="produced"}) > 0 and on (type) sum by (type) (rate(x_total[10m])) == 0`,
			[]string{`max by (type) (skuflow_jobs{state="produced"})`, `sum by (type) (rate(x_total[10m]))`}},
		{`a > bool on (type) group_left (x) b unless ignoring (le) c`, []string{"a", "b", "c"}},
		{`histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m]))) > 10`, []string{`histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))`}},
		{`m{reason=" and > 1 "} < -Inf`, []string{`m{reason=" and > 1 "}`}},
		{`sum(a) / sum(b)`, []string{`sum(a) / sum(b)`}},
	} {
		if got := measured(tc.expr); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("measured(%q)\n got %q\nwant %q", tc.expr, got, tc.want)
		}
	}
}

func TestExpand(t *testing.T) {
	v := grafanaVars{RateInterval: "1m", Range: "300s"}
	got := v.expand(`sum(rate(a{type=~"$type"}[$__rate_interval])) + sum(increase(b{type=~"${type}"}[$__range]))`)
	want := `sum(rate(a{type=~".*"}[1m])) + sum(increase(b{type=~".*"}[300s]))`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
