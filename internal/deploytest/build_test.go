package deploytest

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// repoRoot is the repository's root: go.mod, the Dockerfile,
// docker-compose.yml.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return root
}

// commands lists cmd/NAME: every command the image holds.
func commands(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(root, "cmd", e.Name(), "main.go")); e.IsDir() && err == nil {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		t.Fatal("no command in cmd/")
	}
	return names
}

// withoutVars is env less the variables named (and those starting with a
// name ending in _).
func withoutVars(env []string, names ...string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		for _, n := range names {
			if k == n || strings.HasSuffix(n, "_") && strings.HasPrefix(k, n) {
				return true
			}
		}
		return false
	})
}

// TestStaticBuild builds the image's binaries with deploy/build-static.sh,
// as the Dockerfile does, and checks what distroless/static needs of them:
// every command and the probe, static (no ELF interpreter or dynamic
// section), with the script's flags in effect.
func TestStaticBuild(t *testing.T) {
	root := repoRoot(t)
	out := t.TempDir()
	build := exec.Command("sh", filepath.Join(root, "deploy", "build-static.sh"), out)
	build.Dir = t.TempDir() // the script finds the repository by itself
	// This machine's platform, so that the probe runs here; the script
	// sets CGO_ENABLED itself.
	build.Env = withoutVars(os.Environ(), "GOOS", "GOARCH", "CGO_ENABLED", "GOFLAGS")
	began := time.Now()
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("deploy/build-static.sh: %v\n%s", err, b)
	}
	t.Logf("deploy/build-static.sh built in %s", time.Since(began).Round(time.Millisecond))

	want := map[string]string{"probe": "skuflow/deploy/probe"}
	for _, name := range commands(t, root) {
		want[name] = "skuflow/cmd/" + name
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	for name := range want {
		if !slices.Contains(got, name) {
			t.Errorf("deploy/build-static.sh built %v: no %s", got, name)
		}
	}
	for name, pkg := range want {
		t.Run(name, func(t *testing.T) {
			checkStatic(t, filepath.Join(out, name), pkg, root)
		})
	}
	t.Run("probe answers", func(t *testing.T) { checkProbe(t, filepath.Join(out, "probe")) })
}

// checkStatic fails unless path is a static, stripped, trimmed build of
// pkg with cgo off: what runs on distroless/static.
func checkStatic(t *testing.T, path, pkg, root string) {
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			t.Error("has an ELF interpreter (PT_INTERP): it needs a dynamic loader, which distroless/static lacks")
		case elf.PT_DYNAMIC:
			t.Error("has a dynamic segment (PT_DYNAMIC): it is dynamically linked")
		}
	}
	if f.Section(".dynamic") != nil || f.Section(".interp") != nil {
		t.Error("has a .dynamic or .interp section: it is dynamically linked")
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("imports shared libraries %v (%v)", libs, err)
	}
	if f.Section(".symtab") != nil {
		t.Error("has a symbol table: -ldflags -s was not applied")
	}
	if f.Section(".debug_info") != nil || f.Section(".zdebug_info") != nil {
		t.Error("has DWARF: -ldflags -w was not applied")
	}

	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bi.Path != pkg {
		t.Errorf("built from %s, want %s", bi.Path, pkg)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	// (-trimpath keeps -ldflags out of the build info: the ELF checks
	// above see -s -w.)
	for key, want := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true"} {
		if settings[key] != want {
			t.Errorf("build setting %s = %q, want %q (all: %v)", key, settings[key], want, settings)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(root+string(filepath.Separator))) {
		t.Errorf("holds the build machine's path %s: -trimpath was not applied", root)
	}
}

// checkProbe runs the probe as a healthcheck does: 0 when every URL
// answers 2xx, 1 when one does not (saying why), 2 for no URL.
func checkProbe(t *testing.T, probe string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/healthz"
	ln.Close()

	for _, c := range []struct {
		name string
		args []string
		code int
		says string
	}{
		{"healthy", []string{srv.URL + "/healthz", srv.URL + "/healthz"}, 0, ""},
		{"not ready", []string{srv.URL + "/healthz", srv.URL + "/readyz"}, 1, "503 Service Unavailable: not ready"},
		{"nothing listening", []string{closed}, 1, "connection refused"},
		{"too slow", []string{"-timeout", "200ms", srv.URL + "/slow"}, 1, "no answer within 200ms"},
		{"no URL", nil, 2, "usage: probe"},
	} {
		out, err := exec.Command(probe, c.args...).CombinedOutput()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code || !strings.Contains(string(out), c.says) {
			t.Errorf("%s: probe %v exited %d saying %q; want %d saying %q", c.name, c.args, code, out, c.code, c.says)
		}
	}
}

// goVersion is the Go the module asks for: its toolchain line, or its go
// line.
func goVersion(t *testing.T, root string) string {
	t.Helper()
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^toolchain go(\S+)\s*$`).FindSubmatch(mod); m != nil {
		return string(m[1])
	}
	m := regexp.MustCompile(`(?m)^go (\S+)\s*$`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	return string(m[1])
}

// dockerStage is one FROM of a Dockerfile and the instructions under it.
type dockerStage struct {
	from  string
	lines []string
}

// parseDockerfile splits a Dockerfile into its global ARGs and its stages,
// joining continued lines and dropping comments.
func parseDockerfile(text string) (args map[string]string, stages []dockerStage) {
	args = map[string]string{}
	text = strings.ReplaceAll(text, "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		word, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(word) {
		case "FROM":
			stages = append(stages, dockerStage{from: strings.TrimSpace(rest)})
		case "ARG":
			if len(stages) == 0 {
				k, v, _ := strings.Cut(strings.TrimSpace(rest), "=")
				args[k] = v
				continue
			}
			fallthrough
		default:
			if len(stages) > 0 {
				s := &stages[len(stages)-1]
				s.lines = append(s.lines, strings.ToUpper(word)+" "+strings.Join(strings.Fields(rest), " "))
			}
		}
	}
	return args, stages
}

// TestDockerfile checks the Dockerfile against the module and the build
// script: the builder is go.mod's Go, the binaries come from
// deploy/build-static.sh, the final image is small and not root, and
// .dockerignore keeps secrets out of the context but leaves in what the
// build needs.
func TestDockerfile(t *testing.T) {
	root := repoRoot(t)
	text, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	args, stages := parseDockerfile(string(text))
	if len(stages) < 2 {
		t.Fatalf("Dockerfile: want a builder stage and a final stage, got %d stages", len(stages))
	}
	if got, want := args["GO_VERSION"], goVersion(t, root); got != want {
		t.Errorf("Dockerfile: ARG GO_VERSION=%s, go.mod says %s", got, want)
	}
	build := stages[0]
	if !regexp.MustCompile(`^golang:\$\{GO_VERSION\}-(bookworm|alpine)( (?i:as) \S+)?$`).MatchString(build.from) {
		t.Errorf("Dockerfile: builder is FROM %s, want golang:${GO_VERSION}-bookworm (or -alpine)", build.from)
	}
	var runsScript bool
	for _, l := range build.lines {
		if strings.HasPrefix(l, "RUN ") && strings.Contains(l, "deploy/build-static.sh") {
			runsScript = true
			if regexp.MustCompile(`go (build|install)`).MatchString(l) {
				t.Errorf("Dockerfile: %q builds with go itself; the flags belong to deploy/build-static.sh", l)
			}
		}
	}
	if !runsScript {
		t.Error("Dockerfile: the builder stage does not RUN deploy/build-static.sh")
	}

	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") && final.from != "scratch" {
		t.Errorf("Dockerfile: final stage FROM %s, want gcr.io/distroless/static-debian12:nonroot or scratch", final.from)
	}
	var user string
	var binaries bool
	for _, l := range final.lines {
		if u, ok := strings.CutPrefix(l, "USER "); ok {
			user = u
		}
		if strings.HasPrefix(l, "COPY --from=") && strings.HasSuffix(l, " /usr/local/bin/") {
			binaries = true
		}
		if strings.HasPrefix(l, "RUN ") {
			t.Errorf("Dockerfile: final stage runs %q: it has no shell", l)
		}
	}
	if name, _, _ := strings.Cut(user, ":"); name == "" || name == "root" || name == "0" {
		t.Errorf("Dockerfile: final stage USER %q, want a non-root user (65532, distroless' nonroot)", user)
	}
	if !binaries {
		t.Error("Dockerfile: final stage copies no binaries from the builder into /usr/local/bin/")
	}
}

// TestDockerignore checks that .dockerignore leaves out .git, local data
// and every file that may hold a token, and leaves in go.mod, go.sum, the
// build script and every package the commands are built from.
func TestDockerignore(t *testing.T) {
	root := repoRoot(t)
	text, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore: %q: this test does not read exceptions; keep the file a plain list", line)
		}
		patterns = append(patterns, strings.TrimPrefix(filepath.Clean(line), "/"))
	}
	// Docker's rule: a path is left out when it, or a folder above it,
	// matches a pattern.
	excluded := func(path string) string {
		parts := strings.Split(path, "/")
		for i := range parts {
			prefix := strings.Join(parts[:i+1], "/")
			for _, p := range patterns {
				if ok, _ := filepath.Match(p, prefix); ok {
					return p
				}
			}
		}
		return ""
	}
	for _, p := range []string{".git", "skuflow.yaml", ".env", "deploy/compose/secrets/prometheus-token", ".data/broker", "bin/loader", "inbox/products.csv"} {
		if excluded(p) == "" {
			t.Errorf(".dockerignore: %s is sent to the Docker build", p)
		}
	}

	list := exec.Command("go", "list", "-e", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", "./cmd/...", "./deploy/probe")
	list.Dir = root
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	needed := []string{"go.mod", "go.sum", "deploy/build-static.sh"}
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		needed = append(needed, filepath.ToSlash(rel)+"/x.go")
	}
	if len(needed) < 6 {
		t.Fatalf("go list found only %v", needed)
	}
	for _, p := range needed {
		if pat := excluded(p); pat != "" {
			t.Errorf(".dockerignore: %q leaves %s out of the Docker build, which needs it", pat, filepath.Dir(p))
		}
	}
}
