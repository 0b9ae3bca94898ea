package config

import (
	"encoding/hex"
	"fmt"
	"net"
	"slices"
)

// Scopes a token may have.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
)

// validateAPI refuses an API that would listen beyond loopback with no
// token (invariant 7), and tokens that cannot work.
func (c *Config) validateAPI(bad func(string, string, ...any)) {
	a := c.API
	host, _, err := net.SplitHostPort(a.Addr)
	if err != nil {
		bad("api.addr", "%q is not host:port", a.Addr)
	} else if len(a.Tokens) == 0 && !IsLoopback(host) {
		bad("api.addr", "%q is beyond loopback, and api.tokens is empty: the API needs a token to listen there ('loader token create NAME' makes one)", a.Addr)
	}
	names := map[string]bool{}
	for i, t := range a.Tokens {
		key := fmt.Sprintf("api.tokens[%d]", i)
		if t.Name == "" || names[t.Name] {
			bad(key+".name", "must be set and unique, got %q", t.Name)
		}
		names[t.Name] = true
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != 32 {
			bad(key+".sha256", "must be the token's SHA-256 in hex (64 characters), as 'loader token create' prints it")
		}
		if len(t.Scopes) == 0 {
			bad(key+".scopes", "name at least one of read, write")
		}
		for _, s := range t.Scopes {
			if !slices.Contains([]string{ScopeRead, ScopeWrite}, s) {
				bad(key+".scopes", "%q is not a scope (read, write)", s)
			}
		}
	}
	if a.SpoolDir == "" {
		bad("api.spool_dir", "must not be empty")
	}
	if a.MaxUploadBytes < 1024 {
		bad("api.max_upload_bytes", "must be at least 1KiB, got %d", a.MaxUploadBytes)
	}
	if a.MaxUploads < 1 {
		bad("api.max_uploads", "must be at least 1, got %d", a.MaxUploads)
	}
	if a.MaxFeedClients < 1 {
		bad("api.max_feed_clients", "must be at least 1, got %d", a.MaxFeedClients)
	}
	if a.MaxRecordsBody < 1024 {
		bad("api.max_records_body", "must be at least 1KiB, got %d", a.MaxRecordsBody)
	}
	if a.MaxRecords < 1 {
		bad("api.max_records", "must be at least 1, got %d", a.MaxRecords)
	}
	if a.RateLimit <= 0 || a.RateBurst < 1 {
		bad("api.rate_limit", "rate_limit must be positive and rate_burst at least 1, got %g and %d", a.RateLimit, a.RateBurst)
	}
	positive(bad, "api.read_header_timeout", a.ReadHeaderTimeout)
	positive(bad, "api.idle_timeout", a.IdleTimeout)
	positive(bad, "api.body_idle_timeout", a.BodyIdleTimeout)
	positive(bad, "api.shutdown_timeout", a.ShutdownTimeout)
}

// IsLoopback reports whether host (a name or an address) is the loopback
// interface.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
