package testenv

import (
	"bufio"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Module is the module path whose go.mod marks the repository root.
const Module = "skuflow"

// EnvBin names a folder of prebuilt binaries (cmd/<name> built as
// <folder>/<name>, as `make build` does into bin/). A relative folder is
// relative to the repository root.
const EnvBin = "SKUFLOW_BIN"

// RepoRoot returns the repository's root: the nearest folder above the
// working directory whose go.mod declares module skuflow.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("testenv: working directory: %v", err)
	}
	for {
		if isModuleRoot(dir) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("testenv: no go.mod of module %s above the working directory", Module)
		}
		dir = parent
	}
}

func isModuleRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == Module
		}
	}
	return false
}

// ExternalTestdata returns the path of name in the shared folder of
// third-party test inputs, <repo>/../shared/testdata/external/<name>. The
// test fails if it is missing.
// ReadCSV returns the records of the CSV file at path, its header first.
func ReadCSV(t testing.TB, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("testenv: %s: %v", path, err)
	}
	return rows
}

func ExternalTestdata(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(filepath.Dir(RepoRoot(t)), "shared", "testdata", "external", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("testenv: external test data %s: %v", name, err)
	}
	return p
}

// handedOut remembers the ports FreePort returned, so that two services of
// one test process never get the same port even after the first has closed
// it.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreePort returns a loopback TCP port that nothing listened on a moment
// ago and that this process has not handed out before. Another process may
// still take it before the caller binds it; the kernel picks ports at random
// from a wide range, so that is rare.
func FreePort(t testing.TB) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testenv: find a free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port
		}
	}
	t.Fatal("testenv: no unused free port after 50 tries")
	return 0
}

// builds holds one build per package for the life of the test process.
var builds = struct {
	sync.Mutex
	m map[string]*build
}{m: map[string]*build{}}

type build struct {
	once sync.Once
	path string
	err  error
}

// BuildBinary returns the path of the program built from pkg: a command's
// name ("broker", meaning skuflow/cmd/broker) or a full import path. With
// SKUFLOW_BIN set it returns <SKUFLOW_BIN>/<name> and fails if that is
// missing. Otherwise it runs `go build` once per test process; the output is
// shared by test processes under os.TempDir() and go's build cache makes
// repeated builds cheap.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	importPath := pkg
	if !strings.Contains(pkg, "/") {
		importPath = Module + "/cmd/" + pkg
	}
	name := path.Base(importPath)
	root := RepoRoot(t)

	if dir := os.Getenv(EnvBin); dir != "" {
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(root, dir)
		}
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("testenv: %s=%s has no %s (run `make build`, or unset %s to build it here): %v", EnvBin, dir, name, EnvBin, err)
		}
		return p
	}

	builds.Lock()
	b := builds.m[importPath]
	if b == nil {
		b = &build{}
		builds.m[importPath] = b
	}
	builds.Unlock()
	b.once.Do(func() { b.path, b.err = goBuild(root, importPath, name) })
	if b.err != nil {
		t.Fatalf("testenv: %v", b.err)
	}
	return b.path
}

// goBuild builds importPath into a folder shared by the test processes of
// this checkout. It writes a private file and renames it into place, so that
// test processes building at the same time, or running an older copy, never
// see a half-written binary.
func goBuild(root, importPath, name string) (string, error) {
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), "skuflow-testbin", hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp := filepath.Join(dir, fmt.Sprintf(".%s.%d", name, os.Getpid()))
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build %s: go is not on PATH: %w", importPath, err)
	}
	cmd := exec.Command(goTool, "build", "-o", tmp, importPath)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("go build %s: %w\n%s", importPath, err, out)
	}
	final := filepath.Join(dir, name)
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	return final, nil
}

// Kcat returns the path of kcat, the Kafka command-line client from the
// Debian package, and fails the test if it is not installed.
func Kcat(t testing.TB) string {
	t.Helper()
	return program(t, "kcat", "kcat")
}

// Zstd returns the path of the zstd command line tool, a compressor
// nobody here wrote, or fails the test saying how to install it.
func Zstd(t testing.TB) string {
	t.Helper()
	return program(t, "zstd", "zstd")
}

// program finds a system program on PATH or in the folders Debian installs
// to (which a non-root PATH may lack), failing with what to install.
func program(t testing.TB, name, pkg string) string {
	t.Helper()
	if p, ok := lookProgram(name); ok {
		return p
	}
	t.Fatalf("testenv: %s not found on PATH or in /usr/bin, /usr/sbin: install it with `make deps` (deploy/stack.sh install, which installs the Debian package %s)", name, pkg)
	return ""
}

func lookProgram(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, dir := range []string{"/usr/bin", "/usr/sbin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}
