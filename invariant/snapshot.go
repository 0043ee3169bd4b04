package invariant

import (
	"context"
	"database/sql"
)

// snapshotChecks are the promises that hold at every instant. Each is one
// statement, so that it reads one consistent state; each row it returns
// is a violation.
var snapshotChecks = []struct {
	kind, query string
}{
	{KindPending, `
SELECT format('Linode %s/%s counts %s pending jobs, %s are in the queue',
              l.account_id, l.id, l.jobs_pending, COUNT(j.id))
FROM linodes AS l
LEFT JOIN jobs AS j ON j.account_id = l.account_id AND j.linode_id = l.id
GROUP BY l.account_id, l.id, l.jobs_pending
HAVING l.jobs_pending <> COUNT(j.id)`},
	{KindPending, `
SELECT format('job %s/%s (%s) waits for Linode %s, which is gone', j.account_id, j.id, j.action, j.linode_id)
FROM jobs AS j
WHERE NOT EXISTS (
    SELECT 1 FROM linodes AS l WHERE l.account_id = j.account_id AND l.id = j.linode_id)`},
	// Only a boot may be accepted while a job is pending, so only the
	// oldest job of a Linode may be anything but a boot.
	{KindBusy, `
SELECT format('job %s/%s (%s) of Linode %s was accepted behind job %s',
              j.account_id, j.id, j.action, j.linode_id, MIN(k.id))
FROM jobs AS j
JOIN jobs AS k ON k.account_id = j.account_id AND k.linode_id = j.linode_id AND k.id < j.id
WHERE j.action <> 'linode_boot'
GROUP BY j.account_id, j.id, j.action, j.linode_id`},
	{KindOneEvent, `
SELECT format('job %s/%s (%s of Linode %s) has event %s: %s',
              j.account_id, j.id, j.action, j.linode_id, j.event_id,
              COALESCE(e.action || ' ' || e.status || ' of ' || e.entity_id, 'missing'))
FROM jobs AS j
LEFT JOIN events AS e ON e.account_id = j.account_id AND e.id = j.event_id
WHERE e.id IS NULL OR e.action <> j.action OR e.entity_id <> j.linode_id
   OR e.status NOT IN ('scheduled', 'started')`},
	{KindOneEvent, `
SELECT format('Linode %s/%s has %s linode_create events', account_id, entity_id, COUNT(*))
FROM events
WHERE action = 'linode_create'
GROUP BY account_id, entity_id
HAVING COUNT(*) <> 1`},
	{KindOneEvent, `
SELECT format('Linode %s/%s has no linode_create event', l.account_id, l.id)
FROM linodes AS l
WHERE NOT EXISTS (
    SELECT 1 FROM events AS e
    WHERE e.account_id = l.account_id AND e.entity_id = l.id AND e.action = 'linode_create')`},
	{KindVisibility, `
SELECT format('event %s/%s was caused by %s, who is no user of account %s',
              e.account_id, e.id, e.username, e.account_id)
FROM events AS e
WHERE e.username IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM users AS u WHERE u.account_id = e.account_id AND u.username = e.username)`},
	{KindVisibility, `
SELECT format('user %s/%s marked seen event %s, which is not of the account', s.account_id, s.user_id, s.seen_id)
FROM event_seen AS s
WHERE NOT EXISTS (SELECT 1 FROM events AS e WHERE e.account_id = s.account_id AND e.id = s.seen_id)`},
	{KindVisibility, `
SELECT format('user %s/%s marked read event %s, which is not of the account', r.account_id, r.user_id, r.event_id)
FROM event_reads AS r
WHERE NOT EXISTS (SELECT 1 FROM events AS e WHERE e.account_id = r.account_id AND e.id = r.event_id)`},
	{KindVisibility, `
SELECT format('job %s/%s of account %s names Linode %s of account %s',
              j.account_id, j.id, j.account_id, j.linode_id, l.account_id)
FROM jobs AS j
JOIN linodes AS l ON l.id = j.linode_id AND l.account_id <> j.account_id`},
}

// finalChecks hold once no request runs and every job had time to end.
var finalChecks = []struct {
	kind, query string
}{
	{KindJobEnd, `
SELECT format('job %s/%s (%s of Linode %s) is still %s after %s attempts',
              account_id, id, action, linode_id, state, attempts)
FROM jobs`},
	{KindJobEnd, `
SELECT format('event %s/%s (%s of %s %s) is still %s', account_id, id, action, entity_type, entity_id, status)
FROM events
WHERE status IN ('scheduled', 'started')`},
	{KindStuck, `
SELECT format('Linode %s/%s is %s with %s jobs pending%s', account_id, id, status, jobs_pending,
              CASE WHEN deleted THEN ', half deleted' ELSE '' END)
FROM linodes
WHERE jobs_pending <> 0 OR deleted
   OR status IN ('provisioning', 'booting', 'shutting_down', 'rebooting', 'rebuilding', 'deleting')`},
}

// Snapshot returns the violations of the promises that hold at every
// instant, as the database is now.
func (c *Checker) Snapshot(ctx context.Context) ([]Violation, error) {
	return c.run(ctx, snapshotChecks)
}

// Quiescent returns the violations of the promises that hold once no
// request runs and every job had time to end, the snapshot ones included.
func (c *Checker) Quiescent(ctx context.Context) ([]Violation, error) {
	vs, err := c.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	more, err := c.run(ctx, finalChecks)
	return append(vs, more...), err
}

func (c *Checker) run(ctx context.Context, checks []struct{ kind, query string }) ([]Violation, error) {
	var vs []Violation
	for _, ck := range checks {
		err := c.rows(ctx, ck.query, func(rs *sql.Rows) error {
			var detail string
			if err := rs.Scan(&detail); err != nil {
				return err
			}
			vs = append(vs, Violation{Kind: ck.kind, Detail: detail})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return vs, nil
}

// Pending returns how many jobs are waiting or running.
func (c *Checker) Pending(ctx context.Context) (int, error) {
	var n int
	err := c.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs`).Scan(&n)
	return n, err
}
