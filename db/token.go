package db

import (
	"context"
	"sync"
	"time"

	"github.com/uptrace/bun"
)

// DefaultTokenCacheTTL is how long a process trusts a token it has looked
// up before it asks the database again: 0, the cache is off, so that a
// revoked token (or a removed user) stops at once in every process.
//
// NOTE: an operator may opt in (apiv4 serve --token-cache-ttl) to save one
// query on every request. The price is that a token revoked in the
// database keeps working on a process that looked it up moments before,
// for at most the TTL; expiry is still checked on every request.
const DefaultTokenCacheTTL time.Duration = 0

// tokenFactsTTL is how long a process keeps what never changes about a
// token (its account, user, scopes and expiry) for IdentifyToken. Any TTL
// is correct, as those facts never change; it only bounds how long an
// unused token stays in memory.
const tokenFactsTTL = time.Hour

// tokenCacheSize bounds the cache: past it, stale entries go first, then
// arbitrary ones.
const tokenCacheSize = 10_000

// tokenCache maps the hash of a token secret to the principal it
// authenticates. It never holds a secret.
type tokenCache struct {
	mu      sync.RWMutex
	ttl     time.Duration
	max     int
	entries map[string]cachedToken
}

type cachedToken struct {
	p      Principal
	expiry int64     // Unix microseconds; 0 means the token never expires
	stale  time.Time // when the entry must be looked up again
}

func newTokenCache(ttl time.Duration, max int) *tokenCache {
	return &tokenCache{ttl: ttl, max: max, entries: map[string]cachedToken{}}
}

// get returns the cached principal of a token hash, or false when there is
// none, it is stale, or the token has expired since it was cached.
func (c *tokenCache) get(hash string, now time.Time) (*Principal, bool) {
	c.mu.RLock()
	e, ok := c.entries[hash]
	c.mu.RUnlock()
	if !ok || !now.Before(e.stale) || (e.expiry != 0 && e.expiry <= micros(now)) {
		return nil, false
	}
	p := e.p
	return &p, true
}

// put caches the principal of a token that was valid at now.
func (c *tokenCache) put(hash string, p *Principal, expiry *int64, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	e := cachedToken{p: *p, stale: now.Add(c.ttl)}
	if expiry != nil {
		e.expiry = *expiry
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[hash] = e
}

// evict makes room: stale entries first, then arbitrary ones down to three
// quarters of the bound. The caller holds the lock.
func (c *tokenCache) evict(now time.Time) {
	for h, e := range c.entries {
		if !now.Before(e.stale) {
			delete(c.entries, h)
		}
	}
	for h := range c.entries {
		if len(c.entries) < c.max*3/4 {
			break
		}
		delete(c.entries, h)
	}
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// SetTokenCacheTTL sets how long this process trusts a token it has looked
// up (DefaultTokenCacheTTL unless set); 0 asks the database on every
// request. It also forgets every cached token.
func (s *Store) SetTokenCacheTTL(ttl time.Duration) {
	s.tokens = newTokenCache(ttl, tokenCacheSize)
	s.facts = newTokenCache(tokenFactsTTL, tokenCacheSize)
}

// checkTokenLive returns Unauthorized ("Invalid Token") when the caller's token
// has been revoked: the check of a store method that may be reached through
// IdentifyToken, made in the method's own transaction.
func checkTokenLive(ctx context.Context, tx bun.Tx, p *Principal) error {
	live, err := tx.NewSelect().Table("tokens").
		Where("account_id = ? AND id = ? AND NOT revoked", p.AccountID, p.TokenID).Exists(ctx)
	if err != nil {
		return err
	}
	if !live {
		return errInvalidToken()
	}
	return nil
}
