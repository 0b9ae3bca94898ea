package api_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"skuflow/api"
	"skuflow/internal/testenv"
)

// The shape of TestLoad: small enough for CI on two cores, large enough to
// have uploads, records and the feed contend.
const (
	loadUploads     = 10   // files uploaded at once
	loadFileRows    = 2000 // rows a file, of which loadFileRepeats update an earlier sku of the file
	loadFileRepeats = 200
	loadRecordRate  = 300 // records a second POSTed, one a request
	loadDuration    = 10 * time.Second
	loadInFlight    = 64 // most POSTs of records waiting for their answer
)

// A bounded load on loopback: loadUploads concurrent uploads of
// loadFileRows-row files while single records are POSTed at loadRecordRate
// a second for loadDuration, with one WebSocket client on /v1/feed that
// never reads. Every answer must be a success and conform to the OpenAPI
// document; afterwards products FINAL holds exactly the distinct skus sent,
// each with its last write, and products_agg is exact (invariants 1 and 3).
// It logs the latency of POST /v1/records.
func TestLoad(t *testing.T) {
	st := testenv.NewStack(t)
	tok, sum := api.NewToken()
	cfg := filepath.Join(t.TempDir(), "skuflow.yaml")
	yaml := fmt.Sprintf("api:\n  tokens:\n    - name: load\n      sha256: %s\n      scopes: [read, write]\n", sum)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	// The default rate (100 a second per token) would refuse this load:
	// it is one client, by design.
	// Room for the ten uploads at once (api.max_uploads is 8 by default).
	base, apiProc := st.API(t, "SKUFLOW_CONFIG="+cfg, "SKUFLOW_API_RATE_LIMIT=5000", "SKUFLOW_API_RATE_BURST=5000", "SKUFLOW_API_MAX_UPLOADS=10")
	st.Service(t, "processor")
	st.Service(t, "aggregator")
	c := newClient(base, tok)

	stuck := stuckFeedClient(t, base, tok)
	defer stuck.Close()

	want := map[string]testenv.Product{} // the last write of each sku sent
	var wg sync.WaitGroup
	began := time.Now()

	// Uploads: each file its own skus, some updated later in the file.
	locations := make([]string, loadUploads)
	for f := range loadUploads {
		var b bytes.Buffer
		b.WriteString("sku,name,description\n")
		distinct := loadFileRows - loadFileRepeats
		for i := range loadFileRows {
			n, version := i, 1
			if i >= distinct {
				n, version = (i-distinct)*7%distinct, 2
			}
			p := testenv.Product{Sku: fmt.Sprintf("L-f%02d-%05d", f, n), Name: fmt.Sprintf("name %d", n%50), Description: fmt.Sprintf("v%d of file %d", version, f)}
			fmt.Fprintf(&b, "%s,%s,%s\n", p.Sku, p.Name, p.Description)
			want[p.Sku] = p
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := c.try("POST", fmt.Sprintf("/v1/files?name=load-%02d.csv", f), "text/csv", b.Bytes())
			if err != nil || a.Status != http.StatusAccepted {
				t.Errorf("upload %d: %v %s", f, err, a)
				return
			}
			locations[f] = a.Header.Get("Location")
		}()
	}

	// Records, paced: record i is sent at began + i/rate, by one of at most
	// loadInFlight requests.
	total := int(loadDuration.Seconds()) * loadRecordRate
	latencies := make([]time.Duration, total)
	slots := make(chan struct{}, loadInFlight)
	for i := range total {
		time.Sleep(time.Until(began.Add(time.Duration(i) * time.Second / loadRecordRate)))
		slots <- struct{}{}
		p := testenv.Product{Sku: fmt.Sprintf("L-r-%05d", i), Name: fmt.Sprintf("name %d", i%50), Description: "posted"}
		want[p.Sku] = p
		body, _ := json.Marshal(map[string]string{"sku": p.Sku, "name": p.Name, "description": p.Description})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			sent := time.Now()
			a, err := c.try("POST", "/v1/records/products", "application/json", body)
			latencies[i] = time.Since(sent)
			if err != nil || a.Status != http.StatusAccepted {
				t.Errorf("record %d: %v %s", i, err, a)
			}
		}()
	}
	sending := time.Since(began)
	wg.Wait()
	t.Logf("load: %d uploads of %d rows (%d distinct) and %d records POSTed one a request over %s (%.0f a second asked, %.0f achieved), answered after %s",
		loadUploads, loadFileRows, loadFileRows-loadFileRepeats, total, sending.Round(time.Millisecond),
		float64(loadRecordRate), float64(total)/sending.Seconds(), time.Since(began).Round(time.Millisecond))
	if t.Failed() {
		t.FailNow()
	}
	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		return latencies[int(p*float64(len(latencies)-1))].Round(100 * time.Microsecond)
	}
	t.Logf("POST /v1/records latency over %d requests: p50 %s, p90 %s, p99 %s, max %s", total, pct(0.50), pct(0.90), pct(0.99), latencies[len(latencies)-1].Round(time.Millisecond))

	// Every upload's job gets done (200), each answer on the way
	// conforming to the document.
	for _, loc := range locations {
		if a := waitJob(t, c, loc, 3*time.Minute); a.Status != http.StatusOK || a.JSON()["records_produced"] != float64(loadFileRows) {
			t.Fatalf("job %s: %s", loc, a)
		}
	}
	t.Logf("every upload done %s after the start", time.Since(began).Round(time.Millisecond))

	// Exact in ClickHouse: once both groups have committed every record on
	// the topic, FINAL holds each sku once with its last write, and the
	// aggregate equals its count from FINAL.
	produced := int64(loadUploads*loadFileRows + total)
	st.WaitCommitted(t, "skuflow-processor", produced, 3*time.Minute)
	st.WaitCommitted(t, "skuflow-aggregator", produced, 3*time.Minute)
	st.WaitCount(t, "SELECT count() FROM skuflow.products FINAL", int64(len(want)), time.Minute)
	if n := st.Count(t, "SELECT count() FROM skuflow.products FINAL"); n != int64(len(want)) {
		t.Fatalf("products FINAL has %d rows, %d distinct skus were sent", n, len(want))
	}
	st.CheckFinal(t, want)
	st.CheckAgg(t, testenv.NameCounts(want))
	t.Logf("products FINAL: %d rows, each the last write of its sku; products_agg exact", len(want))

	// The stuck client never slowed anything down, and the API still
	// answers at once.
	start := time.Now()
	if a := c.call(t, "GET", "/healthz", "", nil); a.Status != http.StatusOK || time.Since(start) > time.Second {
		t.Errorf("healthz after the load: %s after %s", a, time.Since(start))
	}
	// What the feed sent it lies unread in its receive buffer: read that
	// now, to show it was attached, and whether the API has closed it.
	pending := 0
	buf := make([]byte, 64<<10)
	var end error
	for end == nil {
		_ = stuck.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		var n int
		n, end = stuck.Read(buf)
		pending += n
	}
	closed := errors.Is(end, io.EOF) || errors.Is(end, syscall.ECONNRESET)
	t.Logf("the stuck feed client had %d bytes of the feed unread in its buffer; the API closed its connection: %v (%v); logged dropping it: %v",
		pending, closed, end, apiProc.LogContains("feed client dropped"))
	if pending == 0 {
		t.Errorf("the feed sent the stuck client nothing: it was not attached")
	}
}

// stuckFeedClient opens GET /v1/feed as a WebSocket, by hand, and never
// reads a byte after the handshake: its receive buffer is kept small, so
// that the server's writes to it block soon.
func stuckFeedClient(t *testing.T, base, token string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	key := make([]byte, 16)
	rand.Read(key)
	fmt.Fprintf(conn, "GET /v1/feed HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n",
		strings.TrimPrefix(base, "http://"), base64.StdEncoding.EncodeToString(key), token)
	// Read the handshake's answer only, byte by byte, so that nothing of
	// the feed is read with it.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var head bytes.Buffer
	one := make([]byte, 1)
	for !bytes.HasSuffix(head.Bytes(), []byte("\r\n\r\n")) {
		if _, err := conn.Read(one); err != nil {
			t.Fatalf("feed handshake: %v after %q", err, head.String())
		}
		head.Write(one)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head.Bytes())), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("GET /v1/feed: %s, not 101 (the feed must be there for the load test)", resp.Status)
	}
	return conn
}
