package observability_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// The dashboard's picture is drawn here, not by Grafana (which is not
// installable on the development machine): every panel at its place on
// the dashboard's grid, each query asked of the test's Prometheus over the
// run with the variables as Grafana fills them, as an HTML page of SVG
// charts that headless Chromium turns into a PNG.

const (
	pageWidth = 1600 // pixels
	cellH     = 30   // pixels of one grid unit of height, as Grafana draws
	headerH   = 64
)

// Grafana's classic palette.
var palette = []string{"#7EB26D", "#EAB839", "#6ED0E0", "#EF843C", "#E24D42", "#1F78C1", "#BA43A9", "#705DA0", "#508642", "#CCA300", "#447EBC", "#C15C17"}

// step is the resolution of the range queries; rateWindow stands for
// $__rate_interval, four of the test's 1 s scrapes and a margin.
const (
	pictureStep = time.Second
	rateWindow  = "5s"
)

func drawDashboard(t *testing.T, prom *testenv.PrometheusServer, d dashboard, begin, end, faultBegin, faultEnd time.Time) {
	t.Helper()
	ctx := context.Background()
	vars := grafanaVars{RateInterval: rateWindow, Range: fmt.Sprintf("%ds", int(end.Sub(begin).Seconds())+1)}
	raw := rawPanels(t)

	var body strings.Builder
	maxY := 0
	for i, p := range d.Panels {
		g := p.GridPos
		maxY = max(maxY, g.Y+g.H)
		x, y := float64(g.X)*pageWidth/24, float64(headerH+g.Y*cellH)
		w, h := float64(g.W)*pageWidth/24, float64(g.H*cellH)
		if p.Type == "row" {
			fmt.Fprintf(&body, `<div class="row" style="left:%.0fpx;top:%.0fpx;width:%.0fpx">%s</div>`, x+6, y+4, w-12, html.EscapeString(p.Title))
			continue
		}
		var series []drawn
		for _, tg := range p.Targets {
			expr := vars.expand(tg.Expr)
			if tg.Instant {
				got, err := prom.Query(ctx, expr)
				if err != nil {
					t.Fatalf("picture: %s: %v", expr, err)
				}
				for _, s := range got {
					series = append(series, drawn{name: legend(tg.LegendFormat, s.Metric), values: []float64{s.Value}, times: []time.Time{end}})
				}
				continue
			}
			got, err := prom.QueryRange(ctx, expr, begin, end, pictureStep)
			if err != nil {
				t.Fatalf("picture: %s: %v", expr, err)
			}
			for _, s := range got {
				series = append(series, drawn{name: legend(tg.LegendFormat, s.Metric), values: s.Values, times: s.Times})
			}
		}
		unit := p.FieldConfig.Defaults.Unit
		if dec := raw[i].decimals; dec != nil {
			for _, s := range series {
				for j, v := range s.values {
					s.values[j] = roundTo(v, *dec)
				}
			}
		}
		fmt.Fprintf(&body, `<div class="panel" style="left:%.0fpx;top:%.0fpx;width:%.0fpx;height:%.0fpx"><div class="title">%s</div>`, x+4, y+4, w-8, h-8, html.EscapeString(p.Title))
		switch p.Type {
		case "stat":
			body.WriteString(statSVG(series, unit, raw[i].thresholds, w-8, h-8-22))
		case "bargauge":
			body.WriteString(barsSVG(series, unit, w-8, h-8-22))
		default:
			body.WriteString(timeSVG(series, unit, begin, end, faultBegin, faultEnd, w-8, h-8-22))
		}
		body.WriteString(`</div>`)
	}
	height := headerH + maxY*cellH + 8
	page := fmt.Sprintf(pageTemplate, pageWidth, height,
		html.EscapeString(d.Title), begin.UTC().Format("2006-01-02 15:04:05"), end.UTC().Format("15:04:05 UTC"),
		faultBegin.Sub(begin).Seconds(), faultEnd.Sub(begin).Seconds(), body.String())

	dir := t.TempDir()
	pagePath := filepath.Join(dir, "dashboard.html")
	if err := os.WriteFile(pagePath, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(dir, "dashboard.png")
	shot(t, pagePath, png, height)
	out := filepath.Join(testenv.RepoRoot(t), pictureFile)
	b, err := os.ReadFile(png)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", out, len(b))
}

const pageTemplate = `<!doctype html><html><head><meta charset="utf-8"><style>
body{margin:0;background:#111217;color:#ccccdc;font:12px/1.3 "DejaVu Sans",Arial,sans-serif;width:%dpx;height:%dpx;position:relative;overflow:hidden}
.header{position:absolute;left:12px;top:10px;right:12px}
.header h1{font-size:18px;margin:0 0 4px 0;color:#fff;font-weight:500}
.header .sub{color:#8e8e9e}
.header .var{display:inline-block;border:1px solid #34343b;padding:1px 6px;margin-right:10px;color:#ccccdc}
.header .fault{display:inline-block;width:14px;height:10px;background:rgba(226,77,66,.25);border:1px solid rgba(226,77,66,.6);vertical-align:middle}
.row{position:absolute;font-size:14px;color:#fff;font-weight:500;border-bottom:1px solid #2a2b33}
.panel{position:absolute;background:#181b1f;border:1px solid #2a2b33;border-radius:3px;overflow:hidden}
.title{height:22px;line-height:22px;padding:0 8px;font-weight:500;color:#ccccdc;white-space:nowrap;overflow:hidden}
svg text{fill:#8e8e9e;font-size:10px}
</style></head><body>
<div class="header"><h1>%s</h1><div class="sub"><span class="var">type: All</span>
%s - %s, one run of test/observability's TestMetricsEndToEnd, scraped every second;
<span class="fault"></span> ClickHouse stopped (%.0f s to %.0f s). Drawn from Prometheus' answers to the dashboard's queries, not by Grafana.</div></div>
%s
</body></html>`

// drawn is one series of a panel.
type drawn struct {
	name   string
	times  []time.Time
	values []float64
}

var legendVar = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)

func legend(format string, labels map[string]string) string {
	if format == "" {
		var parts []string
		for k, v := range labels {
			parts = append(parts, k+"="+v)
		}
		return strings.Join(parts, ",")
	}
	return strings.TrimSpace(legendVar.ReplaceAllStringFunc(format, func(m string) string {
		return labels[legendVar.FindStringSubmatch(m)[1]]
	}))
}

// timeSVG draws series as lines over [begin, end], the fault shaded, with
// a legend below.
func timeSVG(series []drawn, unit string, begin, end, faultBegin, faultEnd time.Time, w, h float64) string {
	const left, right, top = 62.0, 10.0, 6.0
	legendRows := min(len(series), 3)
	bottom := 18.0 + float64(legendRows)*13
	pw, ph := w-left-right, h-top-bottom
	top0 := 0.0
	for _, s := range series {
		for _, v := range s.values {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				top0 = max(top0, v)
			}
		}
	}
	ymax := niceMax(top0)
	span := end.Sub(begin).Seconds()
	px := func(at time.Time) float64 { return left + at.Sub(begin).Seconds()/span*pw }
	py := func(v float64) float64 { return top + ph - v/ymax*ph }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%.0f" height="%.0f">`, w, h)
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="rgba(226,77,66,.18)" stroke="rgba(226,77,66,.5)" stroke-dasharray="3,3"/>`,
		px(faultBegin), top, px(faultEnd)-px(faultBegin), ph)
	for i := 0; i <= 4; i++ {
		v := ymax * float64(i) / 4
		y := py(v)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#24262c"/>`, left, left+pw, y, y)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, left-4, y+3, html.EscapeString(format(v, unit)))
	}
	for at := begin.Truncate(15 * time.Second).Add(15 * time.Second); at.Before(end); at = at.Add(15 * time.Second) {
		x := px(at)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#24262c"/>`, x, x, top, top+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x, top+ph+12, at.UTC().Format("15:04:05"))
	}
	for i, s := range series {
		color := palette[i%len(palette)]
		var pts []string
		flush := func() {
			if len(pts) > 0 {
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, color, strings.Join(pts, " "))
			}
			pts = pts[:0]
		}
		for j, v := range s.values {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				flush()
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.times[j]), py(v)))
		}
		flush()
	}
	if len(series) == 0 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" style="font-size:13px">No data</text>`, left+pw/2, top+ph/2)
	}
	// The legend: as many entries as fit in its rows, the rest counted.
	x, row := left, 0
	for i, s := range series {
		name := s.name
		if name == "" {
			name = "value"
		}
		width := 18 + 6.2*float64(len(name))
		if x+width > w && x > left {
			row++
			x = left
		}
		if row >= legendRows {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">+%d more</text>`, w-60, top+ph+18+float64(legendRows-1)*13+9, len(series)-i)
			break
		}
		y := top + ph + 18 + float64(row)*13
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="10" height="3" fill="%s"/><text x="%.1f" y="%.1f" style="fill:#ccccdc">%s</text>`,
			x, y+5, palette[i%len(palette)], x+14, y+9, html.EscapeString(name))
		x += width
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// statSVG draws the last value of the first series in its threshold's
// colour, as a stat panel with colorMode background does.
func statSVG(series []drawn, unit string, thresholds []threshold, w, h float64) string {
	if len(series) == 0 {
		return fmt.Sprintf(`<svg width="%.0f" height="%.0f"><text x="%.1f" y="%.1f" text-anchor="middle" style="font-size:14px">No data</text></svg>`, w, h, w/2, h/2)
	}
	vals := series[0].values
	last := math.NaN()
	for i := len(vals) - 1; i >= 0; i-- {
		if !math.IsNaN(vals[i]) {
			last = vals[i]
			break
		}
	}
	color := "#73BF69"
	for _, th := range thresholds {
		if th.value == nil || last >= *th.value {
			color = map[string]string{"green": "#73BF69", "orange": "#FF9830", "red": "#F2495C"}[th.color]
		}
	}
	return fmt.Sprintf(`<svg width="%.0f" height="%.0f"><rect x="4" y="2" width="%.1f" height="%.1f" rx="2" fill="%s"/>`+
		`<text x="%.1f" y="%.1f" text-anchor="middle" style="fill:#fff;font-size:30px;font-weight:500">%s</text></svg>`,
		w, h, w-8, h-6, color, w/2, h/2+10, html.EscapeString(format(last, unit)))
}

// barsSVG draws one horizontal bar per series (an instant query).
func barsSVG(series []drawn, unit string, w, h float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%.0f" height="%.0f">`, w, h)
	top := 0.0
	for _, s := range series {
		top = max(top, s.values[0])
	}
	rowH := min(28.0, (h-8)/float64(max(len(series), 1)))
	for i, s := range series {
		y := 4 + float64(i)*rowH
		bw := 0.0
		if top > 0 {
			bw = s.values[0] / top * (w - 190)
		}
		fmt.Fprintf(&b, `<text x="8" y="%.1f" style="fill:#ccccdc">%s</text>`, y+rowH/2+4, html.EscapeString(s.name))
		fmt.Fprintf(&b, `<rect x="130" y="%.1f" width="%.1f" height="%.1f" fill="#FF9830"/><text x="%.1f" y="%.1f" style="fill:#ccccdc">%s</text>`,
			y+3, math.Max(bw, 1), rowH-6, 136+bw, y+rowH/2+4, html.EscapeString(format(s.values[0], unit)))
	}
	if len(series) == 0 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">No data</text>`, w/2, h/2)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// roundTo rounds v to decimals places, as a panel's decimals setting
// shows it.
func roundTo(v float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	return math.Round(v*p) / p
}

// niceMax rounds v up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// format writes v in unit as Grafana would, roughly.
func format(v float64, unit string) string {
	if math.IsNaN(v) {
		return "NaN"
	}
	si := func(v float64, suffix string) string {
		for _, u := range []struct {
			f float64
			s string
		}{{1e9, "G"}, {1e6, "M"}, {1e3, "K"}} {
			if math.Abs(v) >= u.f {
				return trim(v/u.f) + " " + u.s + suffix
			}
		}
		return strings.TrimSpace(trim(v) + " " + suffix)
	}
	switch unit {
	case "s":
		switch {
		case v == 0:
			return "0 s"
		case math.Abs(v) < 1:
			return trim(v*1000) + " ms"
		}
		return trim(v) + " s"
	case "Bps":
		return si(v, "B/s")
	case "bytes":
		for _, u := range []struct {
			f float64
			s string
		}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
			if v >= u.f {
				return trim(v/u.f) + " " + u.s
			}
		}
		return trim(v) + " B"
	case "reqps":
		return si(v, "req/s")
	case "percentunit":
		return trim(v*100) + "%"
	}
	return si(v, "")
}

func trim(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// threshold is a step of a stat panel's thresholds.
type threshold struct {
	color string
	value *float64
}

type rawPanel struct {
	thresholds []threshold
	decimals   *int
}

// rawPanels reads the panels' thresholds, which the checks do not need.
func rawPanels(t *testing.T) []rawPanel {
	t.Helper()
	var d struct {
		Panels []struct {
			FieldConfig struct {
				Defaults struct {
					Decimals   *int `json:"decimals"`
					Thresholds struct {
						Steps []struct {
							Color string   `json:"color"`
							Value *float64 `json:"value"`
						} `json:"steps"`
					} `json:"thresholds"`
				} `json:"defaults"`
			} `json:"fieldConfig"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(readRepoFile(t, dashboardFile)), &d); err != nil {
		t.Fatal(err)
	}
	out := make([]rawPanel, len(d.Panels))
	for i, p := range d.Panels {
		out[i].decimals = p.FieldConfig.Defaults.Decimals
		for _, s := range p.FieldConfig.Defaults.Thresholds.Steps {
			out[i].thresholds = append(out[i].thresholds, threshold{color: s.Color, value: s.Value})
		}
	}
	return out
}

// shot renders page with headless Chromium into png.
func shot(t *testing.T, page, png string, height int) {
	t.Helper()
	var browser string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		t.Fatal("no Chromium on PATH: install it with `deploy/stack.sh install` (Debian's chromium package)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--no-first-run",
		"--hide-scrollbars", "--force-device-scale-factor=1",
		"--user-data-dir="+t.TempDir(),
		fmt.Sprintf("--window-size=%d,%d", pageWidth, height),
		"--screenshot="+png, "file://"+page)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
}
