package db

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// Principal is the caller of a request, as its token says.
type Principal struct {
	AccountID int64
	UserID    int64
	Username  string
	TokenID   int64
	Scopes    string // space-separated Linode scopes, or "*"
}

// Account is a customer: the owner of Linodes and of an event history.
type Account struct {
	bun.BaseModel `bun:"table:accounts"`

	ID      int64  `bun:"id,pk,autoincrement"`
	Name    string `bun:"name"`
	Created int64  `bun:"created"`
}

// User is a person who signs in to an account.
type User struct {
	bun.BaseModel `bun:"table:users"`

	AccountID int64  `bun:"account_id"`
	ID        int64  `bun:"id,pk,autoincrement"`
	Username  string `bun:"username"`
	Created   int64  `bun:"created"`
}

// Token is a personal access token. Only the SHA-256 of its secret is stored.
type Token struct {
	bun.BaseModel `bun:"table:tokens,alias:t"`

	ID        int64  `bun:"id,pk,autoincrement"`
	AccountID int64  `bun:"account_id"`
	UserID    int64  `bun:"user_id"`
	Hash      string `bun:"hash"`
	Prefix    string `bun:"prefix"` // the secret's first 16 characters, shown in lists
	Label     string `bun:"label"`
	Scopes    string `bun:"scopes"`
	Created   int64  `bun:"created"`
	Expiry    *int64 `bun:"expiry"`
	Revoked   bool   `bun:"revoked"`
}

// EnsureUser returns the user called username, creating it and, when needed,
// the account called accountName. An existing user keeps its account: asking
// for it under another account name is Invalid.
func (s *Store) EnsureUser(ctx context.Context, accountName, username string) (*User, error) {
	if !isName(accountName) {
		return nil, Errorf(Invalid, "account", "An account name is %s", nameRule)
	}
	if !isName(username) {
		return nil, Errorf(Invalid, "username", "A username is %s", nameRule)
	}
	var u User
	err := s.tx(ctx, func(tx bun.Tx) error {
		now := micros(s.now())
		err := tx.NewSelect().Model(&u).Where("username = ?", username).Scan(ctx)
		if err == nil {
			var acct Account
			if err := tx.NewSelect().Model(&acct).Where("id = ?", u.AccountID).Scan(ctx); err != nil {
				return err
			}
			if acct.Name != accountName {
				return Errorf(Invalid, "username", "user %s belongs to account %s", username, acct.Name)
			}
			return nil
		}
		if translate(err) != ErrNotFound {
			return err
		}

		acct := Account{Name: accountName, Created: now}
		_, err = tx.NewInsert().Model(&acct).
			On("CONFLICT (name) DO UPDATE SET name = EXCLUDED.name").
			Returning("id").Exec(ctx)
		if err != nil {
			return err
		}
		_, err = tx.NewInsert().Model(&eventCounter{AccountID: acct.ID, FirstSeq: 1}).
			On("CONFLICT (account_id) DO NOTHING").Exec(ctx)
		if err != nil {
			return err
		}
		u = User{AccountID: acct.ID, Username: username, Created: now}
		_, err = tx.NewInsert().Model(&u).Returning("id").Exec(ctx)
		return err
	})
	return &u, err
}

// MissingUsers returns those of names that are not users of the caller's
// account.
func (s *Store) MissingUsers(ctx context.Context, p *Principal, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	var found []string
	err := s.db.NewSelect().Model((*User)(nil)).Column("username").
		Where("account_id = ? AND username IN (?)", p.AccountID, bun.In(names)).
		Scan(ctx, &found)
	if err != nil {
		return nil, translate(err)
	}
	var missing []string
	for _, n := range names {
		if !slices.Contains(found, n) {
			missing = append(missing, n)
		}
	}
	return missing, nil
}

// CreateToken issues a new token for the user, with the given scopes ("*"
// for all) and optional expiry, and returns its secret. The secret is shown
// once and never stored. Scopes that do not parse are Invalid (field
// "scopes"). It writes no event: it is the operator's way in, and
// IssueToken is the user's.
func (s *Store) CreateToken(ctx context.Context, u *User, label, scopes string,
	expiry *time.Time) (string, error) {
	canon, err := parseScopes(scopes)
	if err != nil {
		return "", err
	}
	t, secret, err := newToken(u.AccountID, u.ID, label, canon, expiry, s.now())
	if err != nil {
		return "", err
	}
	err = s.tx(ctx, func(tx bun.Tx) error {
		_, err := tx.NewInsert().Model(t).Returning("id").Exec(ctx)
		return err
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// newToken makes a token row and its secret: 32 random bytes in hex, of
// which only the SHA-256 and the first 16 characters are kept.
func newToken(accountID, userID int64, label, scopes string, expiry *time.Time,
	now time.Time) (*Token, string, error) {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return nil, "", err
	}
	secret := hex.EncodeToString(buf)
	t := &Token{
		AccountID: accountID, UserID: userID, Hash: hashToken(secret), Prefix: secret[:16],
		Label: label, Scopes: scopes, Created: micros(now),
	}
	if expiry != nil {
		us := micros(*expiry)
		t.Expiry = &us
	}
	return t, secret, nil
}

// Authenticate returns the principal of a token secret. An unknown, expired
// or revoked token is Unauthorized with the reason "Invalid Token". A token
// looked up less than the token cache TTL ago is not looked up again.
func (s *Store) Authenticate(ctx context.Context, secret string) (*Principal, error) {
	return s.authenticate(ctx, secret, s.tokens)
}

// IdentifyToken returns the principal of a token secret for a request
// whose own statement checks, in its snapshot, that the token is not
// revoked (tokenLive): the events list. It may answer from this process's
// cache of what never changes about a token (its account, user, scopes and
// expiry), so that such a request costs one statement; a revocation by any
// process still counts from the next request on. An unknown or expired
// token is Unauthorized ("Invalid Token") here, a revoked one there.
func (s *Store) IdentifyToken(ctx context.Context, secret string) (*Principal, error) {
	return s.authenticate(ctx, secret, s.facts)
}

// authenticate looks a token up in cache, then in the database, and puts a
// live token it looked up in every cache.
func (s *Store) authenticate(ctx context.Context, secret string, cache *tokenCache) (*Principal,
	error) {
	if secret == "" || len(secret) > 256 || strings.ContainsAny(secret, " \t") {
		return nil, errInvalidToken()
	}
	// The lookup is by hash, so its timing tells nothing about the secret.
	hash := hashToken(secret)
	now := s.now()
	if p, ok := cache.get(hash, now); ok {
		return p, nil
	}

	rows, err := s.queryRow(ctx, errInvalidToken(), authSQL, hash)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var p Principal
	var expiry sql.NullInt64
	var revoked bool
	err = rows.Scan(&p.TokenID, &p.AccountID, &p.UserID, &p.Scopes, &expiry, &revoked, &p.Username)
	if err != nil {
		return nil, translate(err)
	}
	if revoked || (expiry.Valid && expiry.Int64 <= micros(now)) {
		return nil, errInvalidToken()
	}
	var exp *int64
	if expiry.Valid {
		exp = &expiry.Int64
	}
	s.tokens.put(hash, &p, exp, now)
	s.facts.put(hash, &p, exp, now)
	return &p, nil
}

// errInvalidToken is the answer to an unknown, expired or revoked token.
func errInvalidToken() error { return &Error{Code: Unauthorized, Reason: "Invalid Token"} }

const authSQL = `SELECT t.id, t.account_id, t.user_id, t.scopes, t.expiry, t.revoked, u.username
FROM tokens AS t
JOIN users AS u ON u.account_id = t.account_id AND u.id = t.user_id
WHERE t.hash = $1`

func hashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// nameRule says what isName accepts.
const nameRule = "1 to 64 letters, digits, '.', '_', '-', '+' or '@'."

// isName reports whether s may name a user or an account: names are shown
// in events and operator listings, so they hold no spaces or control
// characters.
func isName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-' || c == '+' || c == '@'
		if !ok {
			return false
		}
	}
	return true
}
