package deploytest

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"skuflow/config"
)

// The services docker-compose.yml runs, and which of them are skuflow's
// own (the image of the Dockerfile, one command each).
var (
	infraServices   = []string{"kafka", "clickhouse", "prometheus", "grafana"}
	skuflowServices = []string{"processor", "aggregator", "watcher", "api"}
)

// listenAddr is where each skuflow service answers /healthz, /readyz and
// /metrics, by its configuration.
var listenAddr = map[string]func(config.Config) string{
	"processor":  func(c config.Config) string { return c.Processor.MetricsAddr },
	"aggregator": func(c config.Config) string { return c.Aggregator.MetricsAddr },
	"watcher":    func(c config.Config) string { return c.Watch.MetricsAddr },
	"api":        func(c config.Config) string { return c.API.Addr },
}

// composeFile is the part of `docker-compose config`'s output the tests
// read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build any    `yaml:"build"`
	// A list: the image has no shell to run a command line.
	Command     []string       `yaml:"command"`
	Entrypoint  []string       `yaml:"entrypoint"`
	Environment map[string]any `yaml:"environment"`
	Volumes     []any          `yaml:"volumes"`
	Ports       []any          `yaml:"ports"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test    []string `yaml:"test"`
		Disable bool     `yaml:"disable"`
	} `yaml:"healthcheck"`
	Restart string `yaml:"restart"`
	User    string `yaml:"user"`
}

func (s composeService) env(key string) string {
	v, ok := s.Environment[key]
	if !ok || v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func (s composeService) buildContext() string {
	switch b := s.Build.(type) {
	case string:
		return b
	case map[string]any:
		c, _ := b["context"].(string)
		return c
	}
	return ""
}

// mount is one entry of a service's volumes, in either syntax.
type mount struct {
	Type, Source, Target string
	ReadOnly             bool
}

func (s composeService) mounts() []mount {
	var ms []mount
	for _, v := range s.Volumes {
		switch v := v.(type) {
		case string:
			parts := strings.Split(v, ":")
			m := mount{Type: "volume", Target: parts[0]}
			if len(parts) > 1 {
				m.Source, m.Target = parts[0], parts[1]
			}
			if len(parts) > 2 {
				m.ReadOnly = slices.Contains(strings.Split(parts[2], ","), "ro")
			}
			if filepath.IsAbs(m.Source) || strings.HasPrefix(m.Source, ".") {
				m.Type = "bind"
			}
			ms = append(ms, m)
		case map[string]any:
			m := mount{}
			m.Type, _ = v["type"].(string)
			m.Source, _ = v["source"].(string)
			m.Target, _ = v["target"].(string)
			m.ReadOnly, _ = v["read_only"].(bool)
			ms = append(ms, m)
		}
	}
	return ms
}

// mountAt is the mount whose target is target.
func (s composeService) mountAt(target string) (mount, bool) {
	for _, m := range s.mounts() {
		if m.Target == target {
			return m, true
		}
	}
	return mount{}, false
}

// hostPath is where a path of the container is on the host, through a
// bind mount of it or of a folder above it.
func (s composeService) hostPath(p string) (string, bool) {
	for _, m := range s.mounts() {
		if m.Type != "bind" {
			continue
		}
		if p == m.Target {
			return m.Source, true
		}
		if rest, ok := strings.CutPrefix(p, m.Target+"/"); ok {
			return filepath.Join(m.Source, rest), true
		}
	}
	return "", false
}

// published lists the service's published ports as host IP and port.
func (s composeService) published() [][2]string {
	var ps [][2]string
	for _, p := range s.Ports {
		switch p := p.(type) {
		case string:
			parts := strings.Split(p, ":")
			switch len(parts) {
			case 3:
				ps = append(ps, [2]string{parts[0], parts[1]})
			case 2:
				ps = append(ps, [2]string{"", parts[0]})
			default:
				ps = append(ps, [2]string{"", ""})
			}
		case map[string]any:
			ip, _ := p["host_ip"].(string)
			ps = append(ps, [2]string{ip, fmt.Sprint(p["published"])})
		}
	}
	return ps
}

// dockerCompose runs Debian's docker-compose on the repository's compose
// file, with none of the settings a user may have (SKUFLOW_* variables, a
// .env file), and returns its output. Without docker-compose the test is
// skipped, saying why; everywhere the project's setup ran, it is there.
func dockerCompose(t *testing.T, root string, args ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skipf("docker-compose is not installed (%v): it checks docker-compose.yml; `make deps` installs Debian's docker-compose package", err)
	}
	empty := filepath.Join(t.TempDir(), "empty.env")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"--project-directory", root, "--env-file", empty,
		"-f", filepath.Join(root, "docker-compose.yml")}, args...)...)
	cmd.Env = withoutVars(os.Environ(), "SKUFLOW_", "GRAFANA_", "COMPOSE_")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// loadConfig loads the configuration a skuflow container would see: file
// (standing for the mounted skuflow.yaml) and the service's environment,
// and nothing of the test's own SKUFLOW_* variables.
func loadConfig(t *testing.T, s composeService, file string) (config.Config, error) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, config.EnvPrefix+"_") {
			t.Setenv(k, "") // restored when the test ends
			os.Unsetenv(k)
		}
	}
	for k := range s.Environment {
		if strings.HasPrefix(k, config.EnvPrefix+"_") && k != config.EnvPrefix+"_CONFIG" {
			t.Setenv(k, s.env(k))
		}
	}
	return config.Load(config.Options{File: file})
}

// listeners parses a Kafka listener list, NAME://host:port,..., into
// NAME -> host:port.
func listeners(t *testing.T, list string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range strings.Split(list, ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(l), "://")
		if !ok {
			t.Fatalf("listener %q: not NAME://host:port", l)
		}
		out[name] = addr
	}
	return out
}

func port(t *testing.T, hostport string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	return p
}

// TestCompose validates docker-compose.yml with `docker-compose config`
// and reads what it resolves to: every service with its image (skuflow's
// built from the Dockerfile, with a command of cmd/), healthchecks on the
// ports the services' configuration gives them, Kafka and ClickHouse where
// the services look, the inbox and the provisioning mounted, and the
// containers' SKUFLOW_* settings loaded by the config package itself.
func TestCompose(t *testing.T) {
	root := repoRoot(t)
	dockerCompose(t, root, "config", "-q")
	var cf composeFile
	if err := yaml.Unmarshal(dockerCompose(t, root, "config"), &cf); err != nil {
		t.Fatalf("docker-compose config: %v (a command is a list: the image has no shell)", err)
	}
	var names []string
	for name := range cf.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	want := slices.Concat(infraServices, skuflowServices)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("docker-compose.yml runs %v, want %v", names, want)
	}
	cmds := commands(t, root)

	for name, s := range cf.Services {
		if s.Image == "" {
			t.Errorf("%s: no image", name)
		}
		if s.Restart == "" || s.Restart == "no" {
			t.Errorf("%s: restart %q: a crashed service stays down", name, s.Restart)
		}
		if s.Healthcheck == nil || s.Healthcheck.Disable || len(s.Healthcheck.Test) < 2 {
			t.Errorf("%s: no healthcheck", name)
		}
		for dep, d := range s.DependsOn {
			if _, ok := cf.Services[dep]; !ok {
				t.Errorf("%s depends on %s, which is no service", name, dep)
			} else if d.Condition == "service_healthy" && cf.Services[dep].Healthcheck == nil {
				t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
		for _, p := range s.published() {
			if p[0] != "127.0.0.1" {
				t.Errorf("%s: port %s published on %q: only the host's loopback (127.0.0.1), a development stack has no authentication on most of them", name, p[1], p[0])
			}
		}
		for _, m := range s.mounts() {
			if m.Type != "bind" {
				continue
			}
			// The inbox and the configuration are the user's; the rest
			// comes with the repository.
			if m.Source == filepath.Join(root, "inbox") || m.Target == "/etc/skuflow/skuflow.yaml" {
				continue
			}
			if _, err := os.Stat(m.Source); err != nil {
				t.Errorf("%s: mounts %s, which is not in the repository: %v", name, m.Source, err)
			}
		}
	}

	// Kafka: the services' brokers are the listener advertised for the
	// other containers, the published port is the one advertised for the
	// host.
	kafka := cf.Services["kafka"]
	bound := listeners(t, kafka.env("KAFKA_LISTENERS"))
	advertised := listeners(t, kafka.env("KAFKA_ADVERTISED_LISTENERS"))
	if !strings.Contains(kafka.env("KAFKA_PROCESS_ROLES"), "controller") {
		t.Errorf("kafka: KAFKA_PROCESS_ROLES %q: KRaft needs the node to be its controller too", kafka.env("KAFKA_PROCESS_ROLES"))
	}
	for _, p := range kafka.published() {
		if !slices.Contains(slices.Collect(maps.Values(advertised)), "127.0.0.1:"+p[1]) {
			t.Errorf("kafka: port %s is published, but no listener is advertised as 127.0.0.1:%s (%v)", p[1], p[1], advertised)
		}
	}
	clickhouse := cf.Services["clickhouse"]
	if m, ok := clickhouse.mountAt("/var/lib/clickhouse"); !ok || m.Type != "volume" {
		t.Errorf("clickhouse: its data (/var/lib/clickhouse) is not in a volume: %+v", clickhouse.mounts())
	}

	example, err := os.ReadFile(filepath.Join(root, "skuflow.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	exampleFile := filepath.Join(t.TempDir(), "skuflow.yaml")
	os.WriteFile(exampleFile, example, 0o644)
	// skuflow.example.yaml with an API token, as README.md has the user
	// make it.
	withToken := strings.Replace(string(example), "  tokens: []\n",
		"  tokens:\n    - {name: ops, sha256: "+strings.Repeat("ab", 32)+", scopes: [read, write]}\n", 1)
	if withToken == string(example) {
		t.Fatal("skuflow.example.yaml has no line '  tokens: []' to put a token entry in")
	}
	tokenFile := filepath.Join(t.TempDir(), "skuflow.yaml")
	os.WriteFile(tokenFile, []byte(withToken), 0o644)
	envKeys := map[string]bool{config.EnvPrefix + "_CONFIG": true}
	for _, k := range config.Keys() {
		envKeys[config.EnvPrefix+"_"+strings.ToUpper(strings.ReplaceAll(k, ".", "_"))] = true
	}

	var image string
	listen := map[string]string{} // service -> the port it serves its HTTP on
	for _, name := range skuflowServices {
		t.Run(name, func(t *testing.T) {
			s := cf.Services[name]
			if got := s.buildContext(); got != root {
				t.Errorf("build context %q, want the repository (%s)", got, root)
			}
			if image == "" {
				image = s.Image
			} else if s.Image != image {
				t.Errorf("image %s; the other skuflow services run %s: one image for every command", s.Image, image)
			}
			if len(s.Entrypoint) > 0 {
				t.Errorf("entrypoint %v: the command names the program", s.Entrypoint)
			}
			if len(s.Command) == 0 {
				t.Fatal("no command")
			}
			if prog := path.Base(s.Command[0]); !slices.Contains(cmds, prog) {
				t.Errorf("command %v: %s is no command of cmd/ (%v)", s.Command, prog, cmds)
			}
			for dep, want := range map[string]string{"kafka": "service_healthy", "clickhouse": "service_healthy"} {
				if got := s.DependsOn[dep].Condition; got != want {
					t.Errorf("depends on %s with condition %q, want %q", dep, got, want)
				}
			}
			conf, ok := s.mountAt(s.env("SKUFLOW_CONFIG"))
			if !ok || conf.Type != "bind" || !conf.ReadOnly {
				t.Errorf("SKUFLOW_CONFIG=%s is not a read-only bind mount (%+v)", s.env("SKUFLOW_CONFIG"), s.mounts())
			} else if conf.Source != filepath.Join(root, "skuflow.yaml") {
				t.Errorf("mounts %s as its configuration, want the user's %s (the file make up uses)", conf.Source, filepath.Join(root, "skuflow.yaml"))
			}
			for k := range s.Environment {
				if strings.HasPrefix(k, config.EnvPrefix+"_") && !envKeys[k] {
					t.Errorf("environment %s is no configuration key: skuflow ignores it", k)
				}
			}

			file := exampleFile
			if name == "api" {
				// Beyond loopback, the API refuses to start without a token.
				_, err := loadConfig(t, s, exampleFile)
				if !config.IsKeyError(err, "api.addr") {
					t.Errorf("the api's settings with skuflow.example.yaml (no token): %v; want api.addr refused for want of a token", err)
				}
				file = tokenFile
			}
			cfg, err := loadConfig(t, s, file)
			if err != nil {
				t.Fatalf("the configuration the container would load: %v", err)
			}
			for _, b := range cfg.Kafka.Brokers {
				host, p, _ := net.SplitHostPort(b)
				if _, ok := cf.Services[host]; host != "kafka" || !ok {
					t.Errorf("kafka.brokers %s: not the kafka service", b)
				}
				var named string
				for n, a := range advertised {
					if a == b {
						named = n
					}
				}
				if named == "" || port(t, bound[named]) != p {
					t.Errorf("kafka.brokers %s: Kafka advertises %v and listens on %v", b, advertised, bound)
				}
			}
			if host, p, _ := net.SplitHostPort(cfg.ClickHouse.Addr); host != "clickhouse" || p != "9000" {
				t.Errorf("clickhouse.addr %s, want the clickhouse service's native port, clickhouse:9000", cfg.ClickHouse.Addr)
			}
			addr := listenAddr[name](cfg)
			host, p, err := net.SplitHostPort(addr)
			if err != nil || host != "0.0.0.0" {
				t.Errorf("listens on %q: Prometheus, in another container, cannot reach it; want 0.0.0.0:PORT", addr)
			}
			listen[name] = p
			if name == "api" {
				if m, ok := s.mountAt(cfg.API.SpoolDir); !ok || m.Type != "volume" {
					t.Errorf("api.spool_dir %s is not a volume: uploads would fill the container (%+v)", cfg.API.SpoolDir, s.mounts())
				}
			}

			// The healthcheck asks the service's own /healthz and /readyz
			// with the image's probe.
			hc := s.Healthcheck.Test
			if len(hc) < 3 || hc[0] != "CMD" || path.Base(hc[1]) != "probe" {
				t.Fatalf("healthcheck %v, want [CMD probe URL...]: the image has no shell, curl or wget", hc)
			}
			var paths []string
			for _, raw := range hc[2:] {
				u, err := url.Parse(raw)
				if err != nil || u.Hostname() != "127.0.0.1" || u.Port() != p {
					t.Errorf("healthcheck asks %s; the service listens on %s", raw, addr)
					continue
				}
				paths = append(paths, u.Path)
			}
			slices.Sort(paths)
			if !slices.Equal(paths, []string{"/healthz", "/readyz"}) {
				t.Errorf("healthcheck asks %v, want /healthz and /readyz", paths)
			}
		})
	}

	watcher := cf.Services["watcher"]
	if !slices.Equal(watcher.Command, []string{"loader", "watch", "/inbox"}) {
		t.Errorf("watcher: command %v, want loader watch /inbox", watcher.Command)
	}
	if m, ok := watcher.mountAt("/inbox"); !ok || m.Type != "bind" || m.Source != filepath.Join(root, "inbox") || m.ReadOnly {
		t.Errorf("watcher: /inbox is %+v, want ./inbox bind-mounted, writable", m)
	}
	if u, _, _ := strings.Cut(watcher.User, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("watcher: user %q, want the owner of ./inbox", watcher.User)
	}

	// Prometheus: the compose variant of its configuration and the local
	// stack's alert rules, and a target for every skuflow service where
	// that service listens.
	prom := cf.Services["prometheus"]
	confPath := "/etc/prometheus/prometheus.yml"
	if m, ok := prom.mountAt(confPath); !ok || m.Source != filepath.Join(root, "deploy", "compose", "prometheus.yml") {
		t.Fatalf("prometheus: %s is %+v, want deploy/compose/prometheus.yml", confPath, m)
	}
	pc := readPrometheus(t, filepath.Join(root, "deploy", "compose", "prometheus.yml"))
	for _, rf := range pc.RuleFiles {
		in := path.Join(path.Dir(confPath), rf)
		if src, ok := prom.hostPath(in); !ok || src != filepath.Join(root, "deploy", "prometheus", rf) {
			t.Errorf("prometheus: rule file %s is %q on the host, want deploy/prometheus/%s", in, src, rf)
		}
	}
	for _, sc := range pc.ScrapeConfigs {
		if sc.Authorization != nil && sc.Authorization.CredentialsFile != "" {
			if src, ok := prom.hostPath(sc.Authorization.CredentialsFile); !ok || !strings.HasPrefix(src, filepath.Join(root, "deploy", "compose", "secrets")+"/") {
				t.Errorf("prometheus: job %s reads its token from %s, which is %q on the host, want deploy/compose/secrets/", sc.JobName, sc.Authorization.CredentialsFile, src)
			}
		}
		for _, target := range sc.targets() {
			host, p, _ := net.SplitHostPort(target)
			if listen[host] != p {
				t.Errorf("prometheus: job %s scrapes %s; the %s service listens on port %q", sc.JobName, target, host, listen[host])
			}
		}
	}
	for _, name := range skuflowServices {
		if !slices.ContainsFunc(pc.ScrapeConfigs, func(sc scrapeConfig) bool { return slices.Contains(sc.targets(), name+":"+listen[name]) }) {
			t.Errorf("prometheus: nothing scrapes %s:%s", name, listen[name])
		}
	}

	// Grafana: the provisioning folder, its data source on the compose
	// Prometheus, its home dashboard one of those provisioned.
	grafana := cf.Services["grafana"]
	if m, ok := grafana.mountAt("/etc/grafana/provisioning"); !ok || m.Source != filepath.Join(root, "deploy", "grafana", "provisioning") {
		t.Errorf("grafana: /etc/grafana/provisioning is %+v, want deploy/grafana/provisioning", m)
	}
	if home := grafana.env("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"); home != "" {
		src, ok := grafana.hostPath(home)
		if _, err := os.Stat(src); !ok || err != nil {
			t.Errorf("grafana: home dashboard %s is not a file of the repository (%q)", home, src)
		}
	}
	sources, _ := filepath.Glob(filepath.Join(root, "deploy", "grafana", "provisioning", "datasources", "*.y*ml"))
	for _, f := range sources {
		var ds struct {
			Datasources []struct{ URL string } `yaml:"datasources"`
		}
		readYAML(t, f, &ds)
		for _, d := range ds.Datasources {
			u, err := url.Parse(d.URL)
			if err != nil || u.Hostname() != "prometheus" || u.Port() != "9090" {
				t.Errorf("grafana: data source %s in %s is not the prometheus service (prometheus:9090)", d.URL, f)
			}
		}
	}
}

// prometheusConfig is the part of a Prometheus configuration the tests
// read.
type prometheusConfig struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		ScrapeTimeout      string `yaml:"scrape_timeout"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	RuleFiles     []string       `yaml:"rule_files"`
	ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
}

type scrapeConfig struct {
	JobName       string `yaml:"job_name"`
	MetricsPath   string `yaml:"metrics_path"`
	Authorization *struct {
		CredentialsFile string `yaml:"credentials_file"`
	} `yaml:"authorization"`
	StaticConfigs []struct {
		Targets []string `yaml:"targets"`
	} `yaml:"static_configs"`
}

func (sc scrapeConfig) targets() []string {
	var ts []string
	for _, s := range sc.StaticConfigs {
		ts = append(ts, s.Targets...)
	}
	return ts
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func readPrometheus(t *testing.T, file string) prometheusConfig {
	t.Helper()
	var pc prometheusConfig
	readYAML(t, file, &pc)
	return pc
}

// TestComposePrometheus checks deploy/compose/prometheus.yml with
// promtool, and against the local stack's deploy/prometheus/prometheus.yml:
// the same intervals, rule files, jobs and ports, so that the alerts and
// the dashboard (which go by job) see the same series on either stack.
// Only the hosts differ (each job's compose service), and the API's token.
func TestComposePrometheus(t *testing.T) {
	root := repoRoot(t)
	file := filepath.Join(root, "deploy", "compose", "prometheus.yml")
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is not installed (%v): `make deps` installs Debian's prometheus package", err)
	}
	// Syntax only: its rule file and token are paths of the container.
	if out, err := exec.Command(promtool, "check", "config", "--syntax-only", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check config: %v\n%s", err, out)
	}

	local := readPrometheus(t, filepath.Join(root, "deploy", "prometheus", "prometheus.yml"))
	compose := readPrometheus(t, file)
	if local.Global != compose.Global {
		t.Errorf("global: compose %+v, local %+v", compose.Global, local.Global)
	}
	if !slices.Equal(local.RuleFiles, compose.RuleFiles) {
		t.Errorf("rule_files: compose %v, local %v", compose.RuleFiles, local.RuleFiles)
	}
	if len(local.ScrapeConfigs) != len(compose.ScrapeConfigs) {
		t.Fatalf("compose has %d jobs, local %d", len(compose.ScrapeConfigs), len(local.ScrapeConfigs))
	}
	for i, l := range local.ScrapeConfigs {
		c := compose.ScrapeConfigs[i]
		if c.JobName != l.JobName || c.MetricsPath != l.MetricsPath {
			t.Errorf("job %d: compose %s%s, local %s%s", i, c.JobName, c.MetricsPath, l.JobName, l.MetricsPath)
			continue
		}
		lt, ct := l.targets(), c.targets()
		if len(lt) != len(ct) {
			t.Errorf("job %s: compose targets %v, local %v", c.JobName, ct, lt)
			continue
		}
		for j := range lt {
			if port(t, lt[j]) != port(t, ct[j]) || !strings.HasPrefix(ct[j], c.JobName+":") {
				t.Errorf("job %s: compose target %s for local %s, want %s:%s", c.JobName, ct[j], lt[j], c.JobName, port(t, lt[j]))
			}
		}
		if (c.Authorization != nil) != (c.JobName == "api") {
			t.Errorf("job %s: authorization %+v; only the API needs a token", c.JobName, c.Authorization)
		}
	}
}
