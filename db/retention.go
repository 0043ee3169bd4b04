package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// PruneLimits bound one step of PruneEvents, so that the pruner works in
// small transactions that never hold up the list for long.
type PruneLimits struct {
	Accounts int // accounts looked at per step
	Events   int // events deleted per account and step
}

// DefaultPruneLimits are the limits of apiv4 serve's pruner.
var DefaultPruneLimits = PruneLimits{Accounts: 500, Events: 1000}

// PruneStep is what one step of a pruning sweep did.
type PruneStep struct {
	Deleted int64 // events deleted
	Next    int64 // where the next step starts: pass it as after
	Done    bool  // the sweep is over; the next one starts at 0
}

// PruneEvents is one step of a sweep that deletes the events created
// before cutoff. It looks at lim.Accounts accounts after the one with id
// after, in id order, and deletes up to lim.Events of the oldest events of
// each one that has some past cutoff, each account in its own transaction.
// The next step looks at the same accounts again while some have more to
// delete.
//
// An account's events are deleted from the oldest on, and first_seq is
// raised in the same transaction, so the list's counts stay exact and its
// pages stay dense. Read marks of the deleted events go with them.
func (s *Store) PruneEvents(ctx context.Context, cutoff time.Time, after int64,
	lim PruneLimits) (PruneStep, error) {
	step := PruneStep{Next: after}
	type candidate struct {
		account, first int64
		due            bool
	}
	rows, err := s.query(ctx, s.db.DB, pruneScanSQL, after, lim.Accounts, micros(cutoff))
	if err != nil {
		return step, translate(err)
	}
	var scanned []candidate
	for rows.Next() {
		var c candidate
		if err := rows.Scan(&c.account, &c.first, &c.due); err != nil {
			rows.Close()
			return step, translate(err)
		}
		scanned = append(scanned, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return step, translate(err)
	}

	more := false
	for _, c := range scanned {
		if !c.due {
			continue
		}
		n, err := s.pruneAccount(ctx, c.account, c.first, micros(cutoff), lim.Events)
		if errors.Is(err, errPruneRace) {
			continue // another process pruned it meanwhile
		}
		if err != nil {
			return step, err
		}
		step.Deleted += n
		more = more || n == int64(lim.Events)
	}
	switch {
	case more: // look at the same accounts again
	case len(scanned) < lim.Accounts:
		step.Next, step.Done = 0, true
	default:
		step.Next = scanned[len(scanned)-1].account
	}
	return step, nil
}

// pruneScanSQL lists a window of accounts with whether the oldest kept
// event of each is past the cutoff: one index probe per account.
// Arguments: the account to start after, how many, the cutoff.
const pruneScanSQL = `WITH scan AS (
    SELECT account_id, first_seq FROM event_counters
    WHERE account_id > $1
    ORDER BY account_id
    LIMIT $2
)
SELECT s.account_id, s.first_seq, COALESCE(e.created < $3, false)
FROM scan AS s
LEFT JOIN events AS e ON e.account_id = s.account_id AND e.seq = s.first_seq
ORDER BY s.account_id`

var errPruneRace = errors.New("db: the account was pruned by another process")

// pruneAccount deletes the account's oldest events, from first on, up to
// the first one created at or after cutoff, at most limit of them. The
// counter is raised last, so its row is locked only for that statement and
// the commit.
func (s *Store) pruneAccount(ctx context.Context, account, first, cutoff int64,
	limit int) (int64, error) {
	var deleted int64
	err := s.tx(ctx, func(tx bun.Tx) error {
		rows, err := s.query(ctx, tx.Tx, `SELECT seq, id, created FROM events
WHERE account_id = $1 AND seq >= $2
ORDER BY seq
LIMIT $3`, account, first, limit)
		if err != nil {
			return err
		}
		newFirst, lastID := first, int64(0)
		for rows.Next() {
			var seq, id, created int64
			if err := rows.Scan(&seq, &id, &created); err != nil {
				rows.Close()
				return err
			}
			if created >= cutoff || seq != newFirst {
				break
			}
			newFirst, lastID = seq+1, id
		}
		rows.Close()
		if err := rows.Err(); err != nil || newFirst == first {
			return err
		}

		steps := []Stmt{
			{`DELETE FROM events WHERE account_id = $1 AND seq >= $2 AND seq < $3`,
				[]any{account, first, newFirst}},
			{`DELETE FROM event_reads WHERE account_id = $1 AND event_id <= $2`,
				[]any{account, lastID}},
		}
		for _, st := range steps {
			if _, err := tx.Tx.ExecContext(ctx, st.SQL, s.prepared(st.Args)...); err != nil {
				return err
			}
		}
		res, err := tx.Tx.ExecContext(ctx, `UPDATE event_counters SET first_seq = $3
WHERE account_id = $1 AND first_seq = $2`, s.prepared([]any{account, first, newFirst})...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errPruneRace
		}
		deleted = newFirst - first
		return nil
	})
	if err != nil && !errors.Is(err, errPruneRace) {
		err = fmt.Errorf("db: prune account %d: %w", account, err)
	}
	return deleted, err
}
