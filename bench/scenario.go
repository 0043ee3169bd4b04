package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"apiv4/db"
)

// scenario is one row of the table: requests to the server, and the
// statements the server sends for them, run straight against the
// database for the ceiling.
type scenario struct {
	key     string // names the row in the bench: line's ratios
	name    string
	clients int
	token   string
	req     func(rng *rand.Rand, worker int) request
	sql     func(ctx context.Context, c *pgx.Conn, rng *rand.Rand, worker int) error
}

const pageSize = 25 // the figures are for pages of 25

// scenarios builds the table's scenarios over the seeded data. firstSeq is
// the big account's oldest kept event once the server has pruned it.
func scenarios(f *fixture, firstSeq int64, clients int) []scenario {
	big, small := f.big, f.small
	kept := big.events - firstSeq + 1
	lastPage := (kept + pageSize - 1) / pageSize
	// The server keeps pruning the oldest events as they pass the window
	// during the run, so the events picked at random skip the oldest 1%.
	old := kept / 100
	randomSeq := func(rng *rand.Rand) int64 { return firstSeq + old + rng.Int64N(kept-old) }
	list := func(a *account, page int64, filter string, size int) db.Stmt {
		st, err := db.ListEventsStmt(&a.Principal, db.ListQuery{Page: int(page), PageSize: size,
			Filter: filter})
		if err != nil {
			panic(err) // the bench's own filters are valid
		}
		return st
	}
	pagePath := func(page int64) string {
		return fmt.Sprintf("/v4/account/events?page=%d&page_size=%d", page, pageSize)
	}

	return []scenario{
		{
			key: "page1", name: "page 1, " + size(big.events) + "-event account", clients: clients,
			token: big.token,
			req:   func(*rand.Rand, int) request { return request{method: "GET", path: pagePath(1)} },
			sql: func(ctx context.Context, c *pgx.Conn, _ *rand.Rand, _ int) error {
				return run(ctx, c, list(big, 1, "", pageSize))
			},
		},
		{
			key: "deep", name: "random pages up to the last", clients: clients, token: big.token,
			req: func(rng *rand.Rand, _ int) request {
				return request{method: "GET", path: pagePath(1 + rng.Int64N(lastPage))}
			},
			sql: func(ctx context.Context, c *pgx.Conn, rng *rand.Rand, _ int) error {
				return run(ctx, c, list(big, 1+rng.Int64N(lastPage), "", pageSize))
			},
		},
		{
			key: "small", name: "page 1, " + size(small.events) + "-event account", clients: clients,
			token: small.token,
			req:   func(*rand.Rand, int) request { return request{method: "GET", path: pagePath(1)} },
			sql: func(ctx context.Context, c *pgx.Conn, _ *rand.Rand, _ int) error {
				return run(ctx, c, list(small, 1, "", pageSize))
			},
		},
		{
			key: "event_finished", name: "filter of WaitForEventFinished", clients: clients,
			token: big.token,
			req: func(rng *rand.Rand, _ int) request {
				return request{method: "GET", path: "/v4/account/events?page=1",
					filter: eventFinishedFilter(big, randomSeq(rng))}
			},
			sql: func(ctx context.Context, c *pgx.Conn, rng *rand.Rand, _ int) error {
				return run(ctx, c, list(big, 1, eventFinishedFilter(big, randomSeq(rng)), 100))
			},
		},
		{
			key: "resource_free", name: "filter of WaitForResourceFree", clients: clients,
			token: big.token,
			req: func(rng *rand.Rand, _ int) request {
				return request{method: "GET", path: "/v4/account/events?page=1",
					filter: resourceFreeFilter(big, randomSeq(rng))}
			},
			sql: func(ctx context.Context, c *pgx.Conn, rng *rand.Rand, _ int) error {
				return run(ctx, c, list(big, 1, resourceFreeFilter(big, randomSeq(rng)), 100))
			},
		},
		{
			key: "seen", name: "POST seen, one client", clients: 1, token: big.token,
			req: func(rng *rand.Rand, _ int) request {
				return request{method: "POST", body: "{}", path: fmt.Sprintf(
					"/v4/account/events/%d/seen", big.firstID+randomSeq(rng)-1)}
			},
			sql: func(ctx context.Context, c *pgx.Conn, rng *rand.Rand, _ int) error {
				return run(ctx, c, db.MarkEventSeenStmt(&big.Principal, big.firstID+randomSeq(rng)-1))
			},
		},
		{
			key: "read", name: "POST read, one client", clients: 1, token: big.token,
			req: func(rng *rand.Rand, _ int) request {
				return request{method: "POST", body: "{}", path: fmt.Sprintf(
					"/v4/account/events/%d/read", big.firstID+randomSeq(rng)-1)}
			},
			sql: func(ctx context.Context, c *pgx.Conn, rng *rand.Rand, _ int) error {
				return run(ctx, c, db.MarkEventReadStmt(&big.Principal, big.firstID+randomSeq(rng)-1))
			},
		},
		{
			key: "insert", name: fmt.Sprintf("event inserts, one account, %d writers", len(f.linodes)),
			clients: len(f.linodes), token: f.writer.token,
			req: func(_ *rand.Rand, w int) request {
				return request{method: "PUT", body: `{"tags":["bench"]}`,
					path: fmt.Sprintf("/v4/linode/instances/%d", f.linodes[w].ID)}
			},
			sql: func(ctx context.Context, c *pgx.Conn, _ *rand.Rand, w int) error {
				l := f.linodes[w]
				l.TagsJSON = `["bench"]`
				stmts := db.UpdateLinodeStmts(&f.writer.Principal, &l, time.Now().UnixMicro())
				return runEach(ctx, c, stmts)
			},
		},
	}
}

// eventFinishedFilter is the X-Filter linodego's WaitForEventFinished sends
// while it waits for the boot of seq's Linode, once it has seen its first
// event: keys sorted, compact.
func eventFinishedFilter(a *account, seq int64) string {
	first := (seq-1)/eventsPerLinode*eventsPerLinode + 1
	return fmt.Sprintf(`{"+order":"desc","+order_by":"created","action":"linode_boot",`+
		`"created":{"+gte":"%s"},"entity.id":%d,"entity.type":"linode","id":{"+gte":%d}}`,
		db.FormatTime(a.created(first)), a.entity(seq), a.firstID+first-1)
}

// resourceFreeFilter is the X-Filter of linodego's WaitForResourceFree for
// seq's Linode.
func resourceFreeFilter(a *account, seq int64) string {
	return fmt.Sprintf(`{"+order":"desc","+order_by":"created","entity.id":%d,`+
		`"entity.type":"linode"}`, a.entity(seq))
}
