// Command probe is the healthcheck of skuflow's container image, which has
// no shell, curl or wget: it GETs each URL and exits 0 when every one
// answers 2xx, 1 otherwise, saying which did not on stderr.
//
//	probe http://127.0.0.1:18081/healthz http://127.0.0.1:18081/readyz
//
// docker-compose.yml runs it as the healthcheck of processor, aggregator,
// watcher and api. deploy/build-static.sh builds it with the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	timeout := flag.Duration("timeout", 5*time.Second, "how long each URL may take to answer")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: probe [-timeout 5s] URL...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	failed := false
	for _, url := range flag.Args() {
		if err := check(url, *timeout); err != nil {
			fmt.Fprintf(os.Stderr, "probe: %s: %v\n", url, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

// check GETs url and returns nil when it answers 2xx within timeout.
func check(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no answer within %s", timeout)
		}
		return err
	}
	defer resp.Body.Close()
	// The services say why they are not ready in a short body: show it.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
