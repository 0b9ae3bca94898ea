package observability_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"skuflow/internal/testenv"
)

// The files of deploy/ that Prometheus and Grafana read.
const (
	prometheusFile = "deploy/prometheus/prometheus.yml"
	alertsFile     = "deploy/prometheus/alerts.yml"
	alertTestsFile = "deploy/prometheus/alerts_test.yml"
	datasourceFile = "deploy/grafana/provisioning/datasources/prometheus.yml"
	providerFile   = "deploy/grafana/provisioning/dashboards/skuflow.yml"
	operationsDoc  = "docs/operations.md"
	pictureFile    = "docs/operations-dashboard.png"
)

func readRepoFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// metricNames returns the names internal/metrics declares, in order.
func metricNames(t testing.TB) []string {
	t.Helper()
	var names []string
	for _, m := range regexp.MustCompile(`Name:\s*"(skuflow_[a-z0-9_]+)"`).FindAllStringSubmatch(readRepoFile(t, "internal/metrics/defs.go"), -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		t.Fatal("internal/metrics/defs.go declares no skuflow_ metric")
	}
	return names
}

// alertNames returns the alerts of alerts.yml with their runbook anchors.
func alertNames(t testing.TB) (names []string, runbooks map[string]string) {
	t.Helper()
	runbooks = map[string]string{}
	var cur string
	for _, line := range strings.Split(readRepoFile(t, alertsFile), "\n") {
		line = strings.TrimSpace(line)
		if name, ok := strings.CutPrefix(line, "- alert: "); ok {
			cur = name
			names = append(names, name)
		}
		if rb, ok := strings.CutPrefix(line, "runbook: "); ok && cur != "" {
			runbooks[cur] = rb
		}
	}
	return names, runbooks
}

// Prometheus' own tools accept the configuration and the rules, and the
// rules' unit tests pass.
func TestPromtool(t *testing.T) {
	root := testenv.RepoRoot(t)
	for _, args := range [][]string{
		{"check", "config", filepath.Join(root, prometheusFile)},
		{"check", "rules", filepath.Join(root, alertsFile)},
		{"test", "rules", filepath.Join(root, alertTestsFile)},
	} {
		out, err := testenv.Promtool(t, args...)
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		} else {
			t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
		}
	}
}

// The dashboard is what Grafana provisions: every panel queries the
// provisioned data source, none overlaps another, every metric skuflow
// declares is on it, and the type variable filters it.
func TestDashboardShape(t *testing.T) {
	d := readDashboard(t)
	if d.UID != "skuflow-overview" || d.Title != "skuflow overview" {
		t.Errorf("dashboard uid %q title %q", d.UID, d.Title)
	}
	m := regexp.MustCompile(`(?m)^\s+uid:\s*(\S+)`).FindStringSubmatch(readRepoFile(t, datasourceFile))
	if m == nil {
		t.Fatalf("%s names no uid", datasourceFile)
	}
	dsUID := m[1]
	provider := readRepoFile(t, providerFile)
	if !strings.Contains(provider, "path: /etc/grafana/provisioning/dashboards") {
		t.Errorf("%s does not load the dashboards from the folder it is in (/etc/grafana/provisioning/dashboards)", providerFile)
	}

	ids := map[int]bool{}
	var grid [][24]string // grid[y][x] is the title of the panel there
	all := ""
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24 columns", p.Title, g)
		}
		for y := g.Y; y < g.Y+g.H; y++ {
			for len(grid) <= y {
				grid = append(grid, [24]string{})
			}
			for x := g.X; x < min(g.X+g.W, 24); x++ {
				if other := grid[y][x]; other != "" {
					t.Errorf("panels %q and %q overlap at %d,%d", other, p.Title, x, y)
				}
				grid[y][x] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Description == "" {
			t.Errorf("panel %q says nothing of what it shows", p.Title)
		}
		if p.Datasource.UID != dsUID {
			t.Errorf("panel %q: data source %q, the provisioned one is %q", p.Title, p.Datasource.UID, dsUID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.Datasource.UID != dsUID {
				t.Errorf("panel %q target %s: expr %q, data source %q", p.Title, tg.RefID, tg.Expr, tg.Datasource.UID)
			}
			all += tg.Expr + "\n"
		}
	}
	for _, name := range metricNames(t) {
		if !regexp.MustCompile(`\b` + name + `(_bucket|_sum|_count)?\b`).MatchString(all) {
			t.Errorf("metric %s is on no panel", name)
		}
	}
	vars := d.Templating.List
	if len(vars) != 1 || vars[0].Name != "type" || vars[0].AllValue != ".*" || vars[0].Datasource.UID != dsUID {
		t.Fatalf("templating: %+v, want the variable type over the provisioned data source, All being .*", vars)
	}
	if n := strings.Count(all, `type=~"$type"`); n < 20 {
		t.Errorf("only %d queries filter by $type", n)
	}
}

// docs/operations.md names every metric, every alert under the heading
// its runbook link points at, the scrape addresses, and shows the
// dashboard's picture.
func TestOperationsDoc(t *testing.T) {
	doc := readRepoFile(t, operationsDoc)
	for _, name := range metricNames(t) {
		if !strings.Contains(doc, "`"+name+"`") {
			t.Errorf("%s does not describe %s", operationsDoc, name)
		}
	}
	names, runbooks := alertNames(t)
	if len(names) == 0 {
		t.Fatalf("%s has no alert", alertsFile)
	}
	var headings []string
	for _, line := range strings.Split(doc, "\n") {
		if h, ok := strings.CutPrefix(line, "### "); ok {
			headings = append(headings, h)
		}
	}
	for _, name := range names {
		if !slices.Contains(headings, name) {
			t.Errorf("%s has no heading ### %s", operationsDoc, name)
		}
		if want := operationsDoc + "#" + strings.ToLower(name); runbooks[name] != want {
			t.Errorf("alert %s: runbook %q, want %q", name, runbooks[name], want)
		}
	}
	for _, addr := range []string{"127.0.0.1:18081", "127.0.0.1:18082", "127.0.0.1:18083", "127.0.0.1:18080"} {
		if !strings.Contains(doc, addr) {
			t.Errorf("%s does not give the scrape address %s", operationsDoc, addr)
		}
	}
	if !strings.Contains(doc, "("+strings.TrimPrefix(pictureFile, "docs/")+")") {
		t.Errorf("%s does not show %s", operationsDoc, pictureFile)
	}
	if _, err := os.Stat(filepath.Join(testenv.RepoRoot(t), pictureFile)); err != nil {
		t.Errorf("the dashboard's picture: %v (go test ./test/observability -run TestMetricsEndToEnd -update-picture draws it)", err)
	}
}
