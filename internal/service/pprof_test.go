package service

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestServeProfilerOnLoopbackOnly(t *testing.T) {
	for _, bad := range []string{"0.0.0.0:0", ":0", "8.8.8.8:0", "nohost"} {
		if _, err := ServeProfiler(bad); err == nil {
			t.Errorf("ServeProfiler(%q) accepted a non-loopback address", bad)
		}
	}
	addr, err := ServeProfiler("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "heap") {
		t.Fatalf("profiler index: %s", body)
	}
}
