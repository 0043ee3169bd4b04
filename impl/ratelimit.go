package impl

import (
	"crypto/sha256"
	"errors"
	"math"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"apiv4/db"
)

// Rate is a request budget: at most Burst requests at once, refilled
// evenly so that Burst more are allowed every Per. A zero Burst means no
// limit.
type Rate struct {
	Burst int
	Per   time.Duration
}

// limiter keeps one token bucket per key. It lives in one process: with
// several processes behind one address a client gets each process's
// budget (see docs/owasp.md).
type limiter struct {
	rate Rate
	now  func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64 // requests allowed now, fractional while refilling
	at     time.Time
}

// maxBuckets bounds the memory of a limiter: past it, full buckets are
// forgotten, which changes nothing as a new bucket starts full.
const maxBuckets = 10000

func newLimiter(rate Rate) *limiter {
	return &limiter{rate: rate, now: time.Now, buckets: map[string]*bucket{}}
}

// verdict is what a limiter says about one request.
type verdict struct {
	allowed    bool
	remaining  int       // requests still allowed now
	reset      time.Time // when the bucket is full again
	retryAfter int       // whole seconds until one request is allowed, when refused
}

// perSecond is the refill rate.
func (l *limiter) perSecond() float64 { return float64(l.rate.Burst) / l.rate.Per.Seconds() }

// refill brings a bucket up to now.
func (l *limiter) refill(b *bucket, now time.Time) {
	b.tokens = math.Min(float64(l.rate.Burst), b.tokens+now.Sub(b.at).Seconds()*l.perSecond())
	b.at = now
}

// take spends one request of key's budget if there is one left (spend
// false only looks), and says what is left.
func (l *limiter) take(key string, spend bool) verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			l.sweep(now)
		}
		b = &bucket{tokens: float64(l.rate.Burst), at: now}
		l.buckets[key] = b
	}
	l.refill(b, now)

	v := verdict{allowed: b.tokens >= 1}
	if v.allowed && spend {
		b.tokens--
	}
	if !v.allowed {
		v.retryAfter = max(1, int(math.Ceil((1-b.tokens)/l.perSecond())))
	}
	v.remaining = int(b.tokens)
	missing := float64(l.rate.Burst) - b.tokens
	v.reset = now.Add(time.Duration(math.Ceil(missing / l.perSecond() * float64(time.Second))))
	return v
}

// sweep forgets the buckets that are full again.
func (l *limiter) sweep(now time.Time) {
	for key, b := range l.buckets {
		if l.refill(b, now); b.tokens >= float64(l.rate.Burst) {
			delete(l.buckets, key)
		}
	}
}

// tooManyRequests is the 429 a refused request gets.
var tooManyRequests = echo.NewHTTPError(429)

// setHeaders writes the X-RateLimit-* headers, and Retry-After on a refusal.
func (l *limiter) setHeaders(c echo.Context, v verdict) {
	h := c.Response().Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(l.rate.Burst))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(v.remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt((v.reset.UnixNano()+int64(time.Second)-1)/int64(time.Second), 10))
	if !v.allowed {
		h.Set("Retry-After", strconv.Itoa(v.retryAfter))
	}
}

// Both limiters count each refusal in m, by route, as
// apiv4_rate_limit_refusals_total.

// limitTokens spends one request of the caller's token budget on every
// authenticated request, and answers 429 when it is spent. It runs after
// authenticate; requests without a principal pass.
func limitTokens(l *limiter, m *Metrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p := principal(c.Request().Context())
			if p == nil || l.rate.Burst == 0 {
				return next(c)
			}
			v := l.take("token:"+strconv.FormatInt(p.TokenID, 10), true)
			l.setHeaders(c, v)
			if !v.allowed {
				m.RateLimitRefused(c.Path())
				return tooManyRequests
			}
			return next(c)
		}
	}
}

// authGate keeps a flood of unknown tokens from one address off the
// database: once an address has sent too many of them ("Invalid Token"
// answers spend its budget), its requests are refused with 429 before
// their token is looked up, unless the token is one this process found
// valid lately. So a client with a stale token behind a shared address
// (a NAT, a proxy) does not lock out the valid tokens sent from there,
// and routes that need no token are never limited. Guessing tokens is
// hopeless anyway (they are 256 random bits).
type authGate struct {
	l *limiter
	m *Metrics

	mu    sync.Mutex
	known map[[sha256.Size]byte]time.Time // digests of valid tokens, and when they were last seen
}

// knownFor is how long a token found valid lets its requests through the
// gate; the store still checks it on every request.
const knownFor = 10 * time.Minute

func newAuthGate(rate Rate, m *Metrics) *authGate {
	return &authGate{l: newLimiter(rate), m: m, known: map[[sha256.Size]byte]time.Time{}}
}

// admit says whether a request with this secret may be looked up; when
// not, it has written the refusal's headers and counted it.
func (g *authGate) admit(c echo.Context, secret string) bool {
	if g.l.rate.Burst == 0 {
		return true
	}
	v := g.l.take("addr:"+clientAddr(c), false)
	if v.allowed || g.isKnown(secret) {
		return true
	}
	g.l.setHeaders(c, v)
	g.m.RateLimitRefused(c.Path())
	return false
}

// judged records what the store said of a secret sent by c.
func (g *authGate) judged(c echo.Context, secret string, err error) {
	if g.l.rate.Burst == 0 {
		return
	}
	var de *db.Error
	switch {
	case err == nil:
		g.remember(secret)
	case errors.As(err, &de) && de.Code == db.Unauthorized:
		g.l.take("addr:"+clientAddr(c), true)
		g.forget(secret) // revoked since, or expired
	}
}

func (g *authGate) forget(secret string) {
	d := sha256.Sum256([]byte(secret))
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.known, d)
}

func (g *authGate) isKnown(secret string) bool {
	d := sha256.Sum256([]byte(secret))
	g.mu.Lock()
	defer g.mu.Unlock()
	at, ok := g.known[d]
	return ok && g.l.now().Sub(at) < knownFor
}

// remember marks a secret found valid now. Past maxBuckets secrets, stale
// ones go first, then arbitrary ones down to three quarters of the bound,
// so that a full set costs one sweep per quarter of it, not one per request.
func (g *authGate) remember(secret string) {
	d := sha256.Sum256([]byte(secret))
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.l.now()
	if _, ok := g.known[d]; !ok && len(g.known) >= maxBuckets {
		for k, at := range g.known {
			if now.Sub(at) >= knownFor {
				delete(g.known, k)
			}
		}
		for k := range g.known {
			if len(g.known) < maxBuckets*3/4 {
				break
			}
			delete(g.known, k)
		}
	}
	g.known[d] = now
}

// clientAddr is the address the request came from, without its port. The
// server listens directly, so X-Forwarded-For is not trusted.
func clientAddr(c echo.Context) string {
	host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
	if err != nil {
		return c.Request().RemoteAddr
	}
	return host
}
