package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"skuflow/config"
)

// authenticator checks bearer tokens and their scopes, and keeps a rate
// limiter per token (per client address when no tokens are configured).
type authenticator struct {
	tokens []token
	limit  rate.Limit
	burst  int
	now    func() time.Time

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

type token struct {
	name   string
	sha256 []byte
	scopes []string
}

func newAuthenticator(c config.API, now func() time.Time) *authenticator {
	a := &authenticator{limit: rate.Limit(c.RateLimit), burst: c.RateBurst, now: now, limiters: map[string]*rate.Limiter{}}
	for _, t := range c.Tokens {
		sum, _ := hex.DecodeString(t.SHA256) // config.Validate has checked it
		a.tokens = append(a.tokens, token{name: t.Name, sha256: sum, scopes: t.Scopes})
	}
	return a
}

// require lets a request through when it may use scope: a configured
// token with the scope (401 without one, 403 with the wrong scope), or,
// with no tokens configured, a client on loopback. Then it must pass its
// rate limit (429 with Retry-After).
func (a *authenticator) require(scope string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, ok := a.check(w, r, scope)
		if !ok {
			return
		}
		if wait := a.reserve(who); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			writeError(w, http.StatusTooManyRequests, "rate_limited",
				fmt.Sprintf("more than %g requests a second (burst %d) for %s; try again in %s", float64(a.limit), a.burst, who, wait.Round(time.Millisecond)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// check answers 401 or 403 and returns false for a request that may not
// use scope; else it returns who is asking.
func (a *authenticator) check(w http.ResponseWriter, r *http.Request, scope string) (string, bool) {
	if len(a.tokens) == 0 {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		if !config.IsLoopback(host) {
			writeError(w, http.StatusUnauthorized, "unauthorized", "no tokens are configured, so only loopback clients may call the API")
			return "", false
		}
		// Without tokens, being on loopback is the credential, and a
		// browser on this machine carries it to any site it visits: a
		// request a web page made (its Origin another site's), or one to
		// a name that only resolves here (DNS rebinding: Host evil.com),
		// is refused.
		if reason := crossSite(r); reason != "" {
			writeError(w, http.StatusForbidden, "cross_site", reason+"; without api.tokens the API serves only this machine's own clients and its page")
			return "", false
		}
		return "client " + host, true
	}
	bearer := ""
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		bearer = strings.TrimSpace(tok)
	} else if isFeed(r) {
		// Browsers cannot set headers on a WebSocket or an EventSource:
		// the feed alone takes the token as a query value.
		bearer = r.URL.Query().Get("access_token")
	}
	if bearer == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="skuflow"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "send a token: Authorization: Bearer TOKEN ('loader token create' makes one)")
		return "", false
	}
	sum := sha256.Sum256([]byte(bearer))
	for _, t := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.sha256) != 1 {
			continue
		}
		if !slices.Contains(t.scopes, scope) {
			writeError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("token %s has scopes %v; this needs %s", t.name, t.scopes, scope))
			return "", false
		}
		return "token " + t.name, true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="skuflow", error="invalid_token"`)
	writeError(w, http.StatusUnauthorized, "unauthorized", "the token is not one the API knows")
	return "", false
}

// reserve takes one request from who's allowance and returns how long it
// would have to wait, 0 when it may go now (a request that must wait is
// refused, and takes nothing).
func (a *authenticator) reserve(who string) time.Duration {
	a.mu.Lock()
	l := a.limiters[who]
	if l == nil {
		l = rate.NewLimiter(a.limit, a.burst)
		a.limiters[who] = l
	}
	a.mu.Unlock()
	now := a.now()
	res := l.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d
	}
	return 0
}

// NewToken returns a new random token and the SHA-256 the configuration
// keeps of it (hex).
func NewToken() (tok, sum string) {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tok = "skf_" + hex.EncodeToString(b)
	h := sha256.Sum256([]byte(tok))
	return tok, hex.EncodeToString(h[:])
}

// isFeed reports whether r asks for the live feed, the one route that
// takes its token from the URL.
func isFeed(r *http.Request) bool {
	return r.URL.Path == "/v1/feed" || r.URL.Path == "/v1/events"
}

// crossSite says why r comes from a web page of another site, or to a
// host name that is not loopback, or "" when it does not.
func crossSite(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	if !config.IsLoopback(strings.Trim(host, "[]")) {
		return fmt.Sprintf("the request names host %q, which is not loopback", r.Host)
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return "a page of another site made the request"
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host != r.Host {
			return fmt.Sprintf("a page of %s made the request", origin)
		}
	}
	return ""
}
