package producer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Format is how the records of an input are written.
type Format string

// The formats a push reads.
const (
	FormatAuto   Format = ""
	FormatJSON   Format = "json"   // one array of objects, or an object holding one
	FormatNDJSON Format = "ndjson" // one object per line
	FormatCSV    Format = "csv"    // a header row, then one record per row
)

// ParseFormat checks a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case FormatAuto, FormatJSON, FormatNDJSON, FormatCSV:
		return f, nil
	case "jsonl":
		return FormatNDJSON, nil
	default:
		return "", fmt.Errorf("unknown format %q: want json, ndjson or csv", s)
	}
}

// Source is one input of a push.
type Source struct {
	// Name is what messages and provenance call it: a path, "-" or a URL
	// with its credentials redacted (see RedactURL). It is safe to store,
	// log and put in headers.
	Name string
	// Size is its size in bytes as stored (compressed), or -1 if unknown.
	Size int64
	// path is set for a local file, whose content can be hashed before
	// it is pushed.
	path string
	// url is set for an http(s) source: the URL as given, credentials
	// and all. It is only ever sent to its server, never named.
	url  string
	open func(ctx context.Context) (io.ReadCloser, int64, error)
}

// Redacted replaces what may be a credential in a URL.
const Redacted = "REDACTED"

// RedactURL returns s, if it is an http(s) URL, with every part that may
// hold a credential replaced by REDACTED: the user info (user:pass@), each
// query value (a presigned URL's signature) and the fragment. The scheme,
// host, path and query names stay, so a person can still tell which file it
// was. Any other string is returned as it is. Every place that names a
// source (headers, tables, logs, messages) gets the name through it.
func RedactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || !isHTTP(scheme) {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		// Nothing can be told apart: keep only the scheme.
		return scheme + "://" + Redacted
	}
	if u.User != nil {
		u.User = url.User(Redacted)
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, part := range parts {
			if name, _, found := strings.Cut(part, "="); found {
				parts[i] = name + "=" + Redacted
			} else if part != "" {
				parts[i] = Redacted // a bare token
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	if u.Fragment != "" || strings.Contains(rest, "#") {
		u.Fragment, u.RawFragment = Redacted, ""
	}
	return u.String()
}

func isHTTP(scheme string) bool {
	return strings.EqualFold(scheme, "http") || strings.EqualFold(scheme, "https")
}

// FileSource is the local file at path, called name in messages and
// provenance (the path itself when name is empty).
func FileSource(path, name string) (Source, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Source{}, fmt.Errorf("input %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return Source{}, fmt.Errorf("input %s: not a regular file", path)
	}
	src := fileSource(path, st.Size())
	if name != "" {
		src.Name = name
	}
	return src, nil
}

// Sources expands push arguments: a file, a directory (its regular files,
// sorted by name, hidden ones skipped, not recursive), "-" for stdin, or an
// http(s) URL.
func Sources(args []string, stdin io.Reader) ([]Source, error) {
	var out []Source
	for _, arg := range args {
		switch {
		case arg == "-":
			out = append(out, Source{Name: "-", Size: -1, open: func(ctx context.Context) (io.ReadCloser, int64, error) {
				return interruptible(ctx, stdin), -1, nil
			}})
		case strings.HasPrefix(arg, "http://") || strings.HasPrefix(arg, "https://"):
			out = append(out, urlSource(arg))
		default:
			st, err := os.Stat(arg)
			if err != nil {
				return nil, fmt.Errorf("input %s: %w", arg, err)
			}
			if !st.IsDir() {
				src := fileSource(arg, st.Size())
				if !st.Mode().IsRegular() {
					// A pipe or device: read once, hashed as it streams,
					// never hashed ahead (that would drain it).
					src.path, src.Size = "", -1
				}
				out = append(out, src)
				continue
			}
			entries, err := os.ReadDir(arg)
			if err != nil {
				return nil, fmt.Errorf("input %s: %w", arg, err)
			}
			sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
					continue
				}
				info, err := e.Info()
				if err != nil {
					return nil, fmt.Errorf("input %s: %w", arg, err)
				}
				out = append(out, fileSource(filepath.Join(arg, e.Name()), info.Size()))
			}
		}
	}
	return out, nil
}

func fileSource(path string, size int64) Source {
	return Source{Name: path, Size: size, path: path, open: func(context.Context) (io.ReadCloser, int64, error) {
		f, err := os.Open(path)
		return f, size, err
	}}
}

// spool saves src, a stream (stdin, a pipe, a URL), as it is (compressed
// or not) to a file in the system's temporary folder (TMPDIR), and returns
// the source that reads that file under src's name, and what removes it.
// A type keyed by its input's content needs the content's hash before the
// first record; the file also makes the content refusable when pushed
// again, as a file's is.
func spool(ctx context.Context, src Source, lim URLLimits) (Source, func(), error) {
	var raw io.ReadCloser
	var err error
	if src.url != "" {
		raw, _, err = fetch(ctx, src, lim)
	} else {
		raw, _, err = src.open(ctx)
	}
	if err != nil {
		return src, nil, fmt.Errorf("open: %w", err)
	}
	defer raw.Close()
	f, err := os.CreateTemp("", "skuflow-spool-*")
	if err != nil {
		return src, nil, fmt.Errorf("spool: %w", err)
	}
	remove := func() { os.Remove(f.Name()) }
	n, err := io.Copy(f, raw)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		remove()
		return src, nil, fmt.Errorf("spool to %s: %w", f.Name(), err)
	}
	spooled := fileSource(f.Name(), n)
	// Named as given, and a URL's path still tells the format.
	spooled.Name, spooled.url = src.Name, src.url
	return spooled, remove, nil
}

func urlSource(raw string) Source {
	return Source{Name: RedactURL(raw), Size: -1, url: raw}
}

// URLLimits bound fetching an http(s) source, so that a server that does
// not answer, stalls or never ends fails the push with a reason instead of
// hanging it. A zero field takes its DefaultURLLimits value.
type URLLimits struct {
	// ConnectTimeout bounds connecting (TCP, then TLS).
	ConnectTimeout time.Duration
	// HeaderTimeout bounds the wait for the response, from the request's
	// start to its headers.
	HeaderTimeout time.Duration
	// IdleTimeout fails the fetch when a read of the body waits that long
	// for data. Time the push spends not reading (backpressure) does not
	// count.
	IdleTimeout time.Duration
	// MaxBytes bounds the body, as stored (compressed).
	MaxBytes int64
}

// DefaultURLLimits are the limits of config.Default (loader.url_*).
var DefaultURLLimits = URLLimits{
	ConnectTimeout: 10 * time.Second,
	HeaderTimeout:  time.Minute,
	IdleTimeout:    30 * time.Second,
	MaxBytes:       64 << 30,
}

func (l URLLimits) orDefaults() URLLimits {
	d := DefaultURLLimits
	if l.ConnectTimeout <= 0 {
		l.ConnectTimeout = d.ConnectTimeout
	}
	if l.HeaderTimeout <= 0 {
		l.HeaderTimeout = d.HeaderTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = d.IdleTimeout
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	return l
}

// fetch GETs the URL of src within lim.
func fetch(ctx context.Context, src Source, lim URLLimits) (io.ReadCloser, int64, error) {
	lim = lim.orDefaults()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: lim.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = lim.ConnectTimeout
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithCancelCause(ctx)
	fail := func(err error) (io.ReadCloser, int64, error) {
		cancel(nil)
		tr.CloseIdleConnections()
		return nil, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.url, nil)
	if err != nil {
		return fail(redactErr(err, src.url))
	}
	waiting := time.AfterFunc(lim.HeaderTimeout, func() {
		cancel(fmt.Errorf("no response from %s within %s (loader.url_header_timeout)", src.Name, lim.HeaderTimeout))
	})
	resp, err := client.Do(req)
	waiting.Stop()
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil && context.Cause(ctx) != ctx.Err() {
			return fail(cause)
		}
		return fail(redactErr(err, src.url))
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return fail(fmt.Errorf("GET %s: %s", src.Name, resp.Status))
	}
	if resp.ContentLength > lim.MaxBytes {
		resp.Body.Close()
		return fail(fmt.Errorf("GET %s: %s: %w", src.Name, tooLong(resp.ContentLength, lim.MaxBytes), ErrTooLarge))
	}
	b := &urlBody{body: resp.Body, ctx: ctx, cancel: cancel, tr: tr, lim: lim, name: src.Name, raw: src.url}
	b.idle = time.AfterFunc(time.Hour, func() {
		cancel(fmt.Errorf("no data from %s for %s (loader.url_idle_timeout)", src.Name, lim.IdleTimeout))
	})
	b.idle.Stop()
	return b, resp.ContentLength, nil
}

// ErrTooLarge is returned for a URL that sends more than
// URLLimits.MaxBytes.
var ErrTooLarge = errors.New("over loader.url_max_bytes")

func tooLong(n, max int64) string {
	return fmt.Sprintf("%d bytes, more than the limit of %d", n, max)
}

// urlBody is a response body read within URLLimits.
type urlBody struct {
	body   io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	tr     *http.Transport
	lim    URLLimits
	name   string
	raw    string // the URL as given
	idle   *time.Timer
	n      int64
}

func (b *urlBody) Read(p []byte) (int, error) {
	if b.n > b.lim.MaxBytes {
		return 0, fmt.Errorf("GET %s: more than %d bytes: %w", b.name, b.lim.MaxBytes, ErrTooLarge)
	}
	// One byte more than allowed tells a body of exactly MaxBytes from a
	// longer one.
	if left := b.lim.MaxBytes - b.n + 1; int64(len(p)) > left {
		p = p[:left]
	}
	b.idle.Reset(b.lim.IdleTimeout)
	n, err := b.body.Read(p)
	b.idle.Stop()
	b.n += int64(n)
	if b.n > b.lim.MaxBytes {
		return n - 1, fmt.Errorf("GET %s: more than %d bytes: %w", b.name, b.lim.MaxBytes, ErrTooLarge)
	}
	if err != nil && err != io.EOF {
		if cause := context.Cause(b.ctx); cause != nil && cause != b.ctx.Err() {
			return n, cause
		}
		err = redactErr(err, b.raw)
	}
	return n, err
}

func (b *urlBody) Close() error {
	b.idle.Stop()
	err := b.body.Close()
	b.cancel(nil)
	b.tr.CloseIdleConnections()
	return err
}

// redactErr returns err with the URL raw, wherever its text holds it (the
// HTTP client's *url.Error, a parse error), redacted.
func redactErr(err error, raw string) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// Its text is Op "URL": Err; the inner error may quote the URL too.
		return &redactedError{fmt.Sprintf("%s %s: %s", ue.Op, RedactURL(ue.URL), redactText(ue.Err.Error(), raw)), ue.Err}
	}
	return &redactedError{redactText(err.Error(), raw), err}
}

// redactedError is an error whose text had a URL's credentials taken out;
// errors.Is and As still see the error it came from.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactText replaces raw, and its parts that may be credentials, in text.
func redactText(text, raw string) string {
	text = strings.ReplaceAll(text, raw, RedactURL(raw))
	if u, err := url.Parse(raw); err == nil {
		if p, ok := u.User.Password(); ok && p != "" {
			text = strings.ReplaceAll(text, p, Redacted)
		}
		if u.RawQuery != "" {
			text = strings.ReplaceAll(text, u.RawQuery, Redacted)
		}
	}
	return text
}

// Input is an opened source: decompressed, with its format found.
type Input struct {
	Source Source
	Format Format
	// Compression is "gzip", "zstd" or "".
	Compression string
	// Size is the stored size in bytes, or -1 if unknown.
	Size int64

	r      *bufio.Reader
	raw    io.ReadCloser
	closer func()
	read   atomic.Int64 // stored bytes read so far, for progress
	hash   hash.Hash    // of the stored bytes, when asked for
}

// RawBytesRead is how many stored (compressed) bytes have been read.
func (in *Input) RawBytesRead() int64 { return in.read.Load() }

// Read reads decompressed bytes.
func (in *Input) Read(p []byte) (int, error) { return in.r.Read(p) }

// Close releases the input.
func (in *Input) Close() error {
	if in.closer != nil {
		in.closer()
	}
	return in.raw.Close()
}

// ErrUnknownFormat is returned when neither the name nor the first bytes say
// which format an input has.
var ErrUnknownFormat = errors.New("cannot tell the format")

// sniffBytes is how much of the decompressed input format detection reads.
const sniffBytes = 64 << 10

// Open opens a source, decompressing it when its first bytes say gzip or
// zstd, and finds its format: force when not FormatAuto, else the name's
// extension (.json, .ndjson, .jsonl, .csv, under .gz or .zst), else the
// first bytes. A .json file whose first line is a whole object followed by
// another object is read as NDJSON, as many .json files are.
//
// Telling NDJSON from a JSON document reads as far as the end of the first
// line and the start of the next, at most DefaultMaxRecordBytes past the
// first 64 KiB, so a long first record decides nothing by its length.
func Open(ctx context.Context, src Source, force Format) (*Input, error) {
	return open(ctx, src, openOptions{force: force})
}

// openOptions are the settings of open.
type openOptions struct {
	force Format
	// hashed computes the SHA-256 of the stored bytes as they are read
	// (complete once the input is read to its end).
	hashed bool
	// maxRecord bounds how far past sniffBytes format detection reads;
	// DefaultMaxRecordBytes when zero.
	maxRecord int
	// url bounds fetching a URL source.
	url URLLimits
	// zstdMaxWindow bounds the window of a zstd frame, and so the
	// decoder's memory; DefaultZstdMaxWindow when zero.
	zstdMaxWindow int64
}

// open is Open with options.
func open(ctx context.Context, src Source, o openOptions) (*Input, error) {
	force, hashed := o.force, o.hashed
	var raw io.ReadCloser
	var size int64
	var err error
	if src.url != "" && src.path == "" {
		raw, size, err = fetch(ctx, src, o.url)
	} else {
		raw, size, err = src.open(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", src.Name, err)
	}
	in := &Input{Source: src, Size: size, raw: raw}
	if hashed {
		in.hash = sha256.New()
	}
	counted := bufio.NewReaderSize(&countingReader{r: raw, n: &in.read, h: in.hash}, 256<<10)
	magic, _ := counted.Peek(4)
	var dec io.Reader = counted
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(counted)
		if err != nil {
			raw.Close()
			return nil, fmt.Errorf("open %s: gzip: %w", src.Name, err)
		}
		dec, in.Compression, in.closer = zr, "gzip", func() { zr.Close() }
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		maxWin := o.zstdMaxWindow
		if maxWin <= 0 {
			maxWin = DefaultZstdMaxWindow
		}
		// The first frame's header says what it needs: refuse it before
		// the decoder allocates that much. Later frames are held to the
		// same bound by the decoder.
		var h zstd.Header
		hdr, _ := counted.Peek(zstd.HeaderMaxSize)
		if h.Decode(hdr) == nil {
			need := h.WindowSize
			if h.SingleSegment {
				need = h.FrameContentSize
			}
			if need > uint64(maxWin) {
				raw.Close()
				return nil, fmt.Errorf("open %s: %w", src.Name, zstdWindowError(need, maxWin))
			}
		}
		zr, err := zstd.NewReader(counted, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(uint64(maxWin)), zstd.WithDecoderMaxMemory(uint64(maxWin)))
		if err != nil {
			raw.Close()
			return nil, fmt.Errorf("open %s: zstd: %w", src.Name, err)
		}
		dec, in.Compression, in.closer = &zstdReader{zr, maxWin}, "zstd", zr.Close
	}
	name := strings.ToLower(src.Name)
	if u, err := url.Parse(src.url); err == nil && src.url != "" {
		// The path's extension, not the query's.
		name = strings.ToLower(u.Path)
	}
	if ext := filepath.Ext(name); (ext == ".gz" || ext == ".zst") && in.Compression == "" {
		in.Close()
		return nil, fmt.Errorf("open %s: the name says %s but the data is not compressed that way", src.Name, ext)
	}
	in.r = bufio.NewReaderSize(dec, sniffBytes)
	in.Format = force
	if in.Format == FormatAuto {
		// A name that decides needs no look at the data, which a slow
		// source may take long to send.
		in.Format = byName(name)
	}
	if in.Format == FormatAuto {
		head, err := in.r.Peek(sniffBytes)
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
			in.Close()
			return nil, fmt.Errorf("read %s: %w", src.Name, err)
		}
		if len(head) == sniffBytes && firstLineOpen(head) {
			if head, err = in.sniffMore(o.maxRecord); err != nil {
				in.Close()
				return nil, fmt.Errorf("read %s: %w", src.Name, err)
			}
		}
		in.Format = detect(name, head)
		if in.Format == FormatAuto {
			in.Close()
			return nil, fmt.Errorf("%s: %w: name it .json, .ndjson or .csv, or pass --format", src.Name, ErrUnknownFormat)
		}
	}
	return in, nil
}

// firstLineOpen reports whether head starts with an object whose line, as
// far as head goes, is not followed by another line's value: what follows
// the first line is what tells NDJSON from a JSON document.
func firstLineOpen(head []byte) bool {
	head = bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n")
	if len(head) == 0 || head[0] != '{' {
		return false
	}
	_, rest, found := bytes.Cut(head, []byte{'\n'})
	return !found || len(bytes.TrimLeft(rest, " \t\r\n")) == 0
}

// sniffMore reads past the first sniffBytes until the first line is
// followed by a value, at most maxRecord bytes more, and returns all it
// read; reading the input starts again from its beginning.
func (in *Input) sniffMore(maxRecord int) ([]byte, error) {
	if maxRecord <= 0 {
		maxRecord = DefaultMaxRecordBytes
	}
	limit := sniffBytes + maxRecord
	buf := make([]byte, 0, 2*sniffBytes)
	var err error
	for len(buf) < limit && (len(buf) <= sniffBytes || firstLineOpen(buf)) {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, min(cap(buf), limit-len(buf)))...)[:len(buf)]
		}
		var n int
		n, err = in.r.Read(buf[len(buf):min(cap(buf), limit)])
		buf = buf[:len(buf)+n]
		if err != nil {
			break
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	rest := in.r
	if err != nil {
		rest = bufio.NewReader(eofReader{})
	}
	in.r = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(buf), rest), sniffBytes)
	return buf, nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// byName picks a format from the name's extension when it decides alone:
// .ndjson, .jsonl and .csv (under .gz or .zst) do, .json does not.
func byName(name string) Format {
	name = strings.TrimSuffix(strings.TrimSuffix(name, ".gz"), ".zst")
	switch filepath.Ext(name) {
	case ".ndjson", ".jsonl":
		return FormatNDJSON
	case ".csv":
		return FormatCSV
	}
	return FormatAuto
}

// detect picks a format from the name's extension and the first bytes.
func detect(name string, head []byte) Format {
	if f := byName(name); f != FormatAuto {
		return f
	}
	name = strings.TrimSuffix(strings.TrimSuffix(name, ".gz"), ".zst")
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	switch {
	case len(trimmed) == 0:
		if filepath.Ext(name) == ".json" {
			return FormatJSON
		}
		return FormatAuto
	case trimmed[0] == '[':
		return FormatJSON
	case trimmed[0] == '{':
		if looksNDJSON(trimmed) {
			return FormatNDJSON
		}
		return FormatJSON
	case filepath.Ext(name) == ".json":
		return FormatJSON
	}
	// Anything else is taken for CSV only when its first line has a comma:
	// a header row of one column is rare, and a wrong guess would
	// misread the whole file.
	line, _, _ := bytes.Cut(head, []byte{'\n'})
	if bytes.IndexByte(line, ',') >= 0 {
		return FormatCSV
	}
	return FormatAuto
}

// looksNDJSON reports whether head starts with a whole JSON value on its
// first line followed, on a later line, by another object.
func looksNDJSON(head []byte) bool {
	line, rest, found := bytes.Cut(head, []byte{'\n'})
	if !found || !json.Valid(line) {
		return false
	}
	rest = bytes.TrimLeft(rest, " \t\r\n")
	return len(rest) > 0 && rest[0] == '{'
}

// DefaultZstdMaxWindow is loader.zstd_max_window's default: the window
// the zstd CLI decodes without being given more memory (--long=27), so a
// file it reads as it is reads here too.
const DefaultZstdMaxWindow = 128 << 20

// ErrZstdWindow is returned for a zstd frame whose window (the history
// the decoder must hold) is over loader.zstd_max_window.
var ErrZstdWindow = errors.New("zstd window too large")

func zstdWindowError(need uint64, limit int64) error {
	return fmt.Errorf("%w: zstd frame needs a window of %s, more than loader.zstd_max_window (%s): recompress it without --long (or with a smaller one), or raise the limit",
		ErrZstdWindow, mib(int64(min(need, 1<<62))), mib(limit))
}

func mib(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// zstdReader names the limit when a later frame's window is over it.
type zstdReader struct {
	zr    *zstd.Decoder
	limit int64
}

func (z *zstdReader) Read(p []byte) (int, error) {
	n, err := z.zr.Read(p)
	if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		err = fmt.Errorf("%w: a zstd frame needs a window of more than loader.zstd_max_window (%s): recompress it without --long (or with a smaller one), or raise the limit", ErrZstdWindow, mib(z.limit))
	}
	return n, err
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
	h hash.Hash
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	if c.h != nil {
		c.h.Write(p[:n])
	}
	return n, err
}

// HashFile returns the hex SHA-256 of the file at path.
func HashFile(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if errors.Is(err, io.EOF) {
			return hex.EncodeToString(h.Sum(nil)), nil
		}
		if err != nil {
			return "", fmt.Errorf("hash: %w", err)
		}
	}
}

// interruptible reads r until ctx ends: a read from a pipe that brings
// nothing (a producer upstream that stalled) does not see a context, and
// would hold a push that was told to stop until its input came or closed.
// r is read by a goroutine of its own, which is left behind, blocked, if
// ctx ends first; the reader returned says why it ended.
func interruptible(ctx context.Context, r io.Reader) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		_, err := io.CopyBuffer(pw, r, make([]byte, 256<<10))
		pw.CloseWithError(err)
	}()
	stop := context.AfterFunc(ctx, func() { pw.CloseWithError(context.Cause(ctx)) })
	return &funcCloser{Reader: pr, close: func() error {
		stop()
		return pr.Close()
	}}
}

// funcCloser is a Reader whose Close calls close.
type funcCloser struct {
	io.Reader
	close func() error
}

func (f *funcCloser) Close() error { return f.close() }
