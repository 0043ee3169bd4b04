package db

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Linode is a virtual machine. Its job rows decide whether it is busy:
// JobsPending counts the jobs scheduled or running on it.
type Linode struct {
	bun.BaseModel `bun:"table:linodes,alias:l"`

	AccountID      int64   `bun:"account_id"`
	ID             int64   `bun:"id,pk,autoincrement"`
	Label          string  `bun:"label"`
	Region         string  `bun:"region"`
	Type           string  `bun:"type"`
	Image          *string `bun:"image"`
	Status         string  `bun:"status"`
	IPv4JSON       string  `bun:"ipv4"`
	IPv6           *string `bun:"ipv6"`
	TagsJSON       string  `bun:"tags"`
	Group          string  `bun:"grp"`
	AlertsJSON     string  `bun:"alerts"`
	Watchdog       bool    `bun:"watchdog"`
	BackupsEnabled bool    `bun:"backups_enabled"`
	BackupDay      *string `bun:"backup_day"`
	BackupWindow   *string `bun:"backup_window"`
	HasUserData    bool    `bun:"has_user_data"`
	HostUUID       string  `bun:"host_uuid"`
	JobsPending    int     `bun:"jobs_pending"`
	Deleted        bool    `bun:"deleted"`
	Created        int64   `bun:"created"`
	Updated        int64   `bun:"updated"`
}

// IPv4 returns the Linode's IPv4 addresses.
func (l *Linode) IPv4() []string { return decodeList(l.IPv4JSON) }

// Tags returns the Linode's tags.
func (l *Linode) Tags() []string { return decodeList(l.TagsJSON) }

// Alerts holds a Linode's alert thresholds.
type Alerts struct {
	CPU           int `json:"cpu"`
	IO            int `json:"io"`
	NetworkIn     int `json:"network_in"`
	NetworkOut    int `json:"network_out"`
	TransferQuota int `json:"transfer_quota"`
}

// Alerts returns the Linode's alert thresholds.
func (l *Linode) Alerts() Alerts {
	var a Alerts
	_ = json.Unmarshal([]byte(l.AlertsJSON), &a)
	return a
}

func decodeList(s string) []string {
	list := []string{}
	_ = json.Unmarshal([]byte(s), &list)
	return list
}

func encode(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// linodeFields are the X-Filter keys of the Linodes list.
var linodeFields = map[string]field{
	"id":      {kind: kindInt, column: "l.id", orderBy: true},
	"label":   {kind: kindString, column: "l.label", orderBy: true},
	"region":  {kind: kindString, column: "l.region", orderBy: true},
	"type":    {kind: kindString, column: "l.type", orderBy: true},
	"image":   {kind: kindString, column: "l.image", orderBy: true},
	"status":  {kind: kindString, column: "l.status", orderBy: true},
	"group":   {kind: kindString, column: "l.grp", orderBy: true},
	"created": {kind: kindTime, column: "l.created", orderBy: true},
	"tags":    {kind: kindTags, column: "l.tags"},
}

// NewLinode is what a create request asks for, already validated.
type NewLinode struct {
	Label          string // empty: "linode<id>"
	Region         string
	Type           string
	Image          *string
	ImageLabel     string
	Booted         bool
	Tags           []string
	Group          string
	BackupsEnabled bool
	HasUserData    bool
	Alerts         Alerts
}

// CreateLinode creates a Linode in status provisioning, with its
// linode_create event and the job that provisions it, in one transaction.
// A label already used in the account is Invalid.
func (s *Store) CreateLinode(ctx context.Context, p *Principal, in NewLinode) (*Linode, error) {
	now := micros(s.now())
	l := &Linode{
		AccountID: p.AccountID, Label: in.Label, Region: in.Region, Type: in.Type,
		Image: in.Image, Status: "provisioning", IPv4JSON: "[]", TagsJSON: encode(nonNil(in.Tags)),
		Group: in.Group, AlertsJSON: encode(in.Alerts), Watchdog: true,
		BackupsEnabled: in.BackupsEnabled, HasUserData: in.HasUserData,
		HostUUID: newUUID(), JobsPending: 1, Created: now, Updated: now,
	}
	if l.Label == "" {
		l.Label = l.HostUUID // unique placeholder until the id is known
	}
	err := s.tx(ctx, func(tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(l).Returning("id").Exec(ctx); err != nil {
			return labelConflict(err)
		}
		if in.Label == "" {
			l.Label = "linode" + strconv.FormatInt(l.ID, 10)
		}
		v4, v6 := addressesFor(l.ID)
		l.IPv4JSON, l.IPv6 = encode([]string{v4}), &v6
		_, err := tx.NewUpdate().Model(l).Column("label", "ipv4", "ipv6").
			Where("account_id = ? AND id = ?", l.AccountID, l.ID).Exec(ctx)
		if err != nil {
			return labelConflict(err)
		}

		var secondary *Entity
		if in.Image != nil {
			secondary = &Entity{ID: *in.Image, Label: in.ImageLabel, Type: "image",
				URL: "/v4/images/" + *in.Image}
		}
		params := encode(map[string]bool{"booted": in.Booted})
		_, err = s.enqueue(ctx, tx, p, l, "linode_create", params, secondary, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// addressesFor derives a Linode's addresses from its id, so that two
// Linodes never share one: IPv4 from 100.64.0.0/10 and IPv6 from the
// documentation prefix.
// TODO(#3): allocate from configurable pools and keep them in their own table.
func addressesFor(id int64) (string, string) {
	n := uint32(id) & 0x3fffff
	v4 := netip.AddrFrom4([4]byte{100, 64 | byte(n>>16), byte(n >> 8), byte(n)})
	b := [16]byte{0x20, 0x01, 0x0d, 0xb8}
	binary.BigEndian.PutUint64(b[8:], uint64(id))
	return v4.String(), netip.AddrFrom16(b).String() + "/128"
}

// GetLinode returns one Linode of the caller's account, or ErrNotFound.
func (s *Store) GetLinode(ctx context.Context, p *Principal, id int64) (*Linode, error) {
	var l Linode
	err := s.db.NewSelect().Model(&l).
		Where("l.account_id = ? AND l.id = ? AND NOT l.deleted", p.AccountID, id).
		Scan(ctx)
	if err != nil {
		return nil, translate(err)
	}
	return &l, nil
}

// LinodePage is one page of Linodes with the envelope counts.
type LinodePage struct {
	Linodes []Linode
	Page    int
	Pages   int
	Results int
}

// ListLinodes returns one page of the caller's Linodes, by id unless the
// filter orders otherwise. A bad filter is Invalid.
func (s *Store) ListLinodes(ctx context.Context, p *Principal, q ListQuery) (*LinodePage, error) {
	f, err := parseFilter(q.Filter, linodeFields)
	if err != nil {
		return nil, err
	}
	if f == nil {
		f = &Filter{}
	}
	where := f.where
	if where == "" {
		where = "1 = 1"
	}
	args := append([]any{nil, nil}, f.args...)
	base := func(sel *bun.SelectQuery) *bun.SelectQuery {
		return sel.Where("l.account_id = ? AND NOT l.deleted", p.AccountID).Where(where, args...)
	}

	total, err := base(s.db.NewSelect().Model((*Linode)(nil))).Count(ctx)
	if err != nil {
		return nil, translate(err)
	}
	ep := newPage(q, int64(total))
	page := &LinodePage{Linodes: []Linode{}, Page: ep.Page, Pages: ep.Pages, Results: ep.Results}
	dir := "ASC"
	if f.desc {
		dir = "DESC"
	}
	order := "l.id " + dir
	if fd, ok := linodeFields[f.orderBy]; ok && f.orderBy != "id" {
		order = fmt.Sprintf("%s %s, l.id %s", fd.column, dir, dir)
	}
	err = base(s.db.NewSelect().Model(&page.Linodes)).
		OrderExpr(order).
		Limit(int64(q.PageSize)).
		Offset(int64(q.Page-1) * int64(q.PageSize)).
		Scan(ctx)
	return page, translate(err)
}

// LinodeUpdate holds the fields a PUT may change; nil means unchanged.
type LinodeUpdate struct {
	Label    *string
	Tags     *[]string
	Group    *string
	Watchdog *bool
	Alerts   func(*Alerts) // changes the current thresholds in place

	BackupDay    *string
	BackupWindow *string
}

// UpdateLinode changes a Linode's settings and writes a linode_update
// notification. It is allowed while the Linode is busy: it starts no job.
// On PostgreSQL it sends the statements UpdateLinodeStmts lists, the first
// with BEGIN and the others with COMMIT: two round trips.
func (s *Store) UpdateLinode(ctx context.Context, p *Principal, id int64,
	in LinodeUpdate) (*Linode, error) {
	var l *Linode
	lock := lockLinodeStmt(p, id)
	change := func() (*Event, error) {
		if l == nil {
			return nil, ErrNotFound
		}
		in.apply(l)
		l.Updated = micros(s.now())
		return linodeEvent(p, l, "linode_update", "notification", nil, l.Updated), nil
	}

	var err error
	if s.pg {
		err = s.writeTx(ctx, step{Stmt: lock, scan: func(rows pgx.Rows) error {
			l, err = scanLinode(rows)
			return err
		}}, func() ([]step, error) {
			e, err := change()
			if err != nil {
				return nil, err
			}
			ins := insertEventStmt(e, nil)
			return []step{{Stmt: updateLinodeStmt(l)},
				{Stmt: ins, scan: func(rows pgx.Rows) error { return scanInsertedRows(rows, e, nil) }}}, nil
		})
	} else {
		err = s.tx(ctx, func(tx bun.Tx) error {
			lock.SQL = strings.TrimSuffix(lock.SQL, "\nFOR UPDATE")
			rows, err := s.query(ctx, tx.Tx, lock.SQL, lock.Args...)
			if err != nil {
				return err
			}
			l, err = scanLinode(rows)
			rows.Close()
			if err != nil {
				return err
			}
			e, err := change()
			if err != nil {
				return err
			}
			up := updateLinodeStmt(l)
			if _, err := tx.Tx.ExecContext(ctx, up.SQL, up.Args...); err != nil {
				return err
			}
			return s.insertEvent(ctx, tx, e, nil)
		})
	}
	if err != nil {
		return nil, translate(labelConflict(err))
	}
	return l, nil
}

// UpdateLinodeStmts returns the statements UpdateLinode sends on
// PostgreSQL, in order, inside one transaction, to store l's settings as
// they are and record the linode_update event at now: the first goes with
// BEGIN, the others with COMMIT. The bench replays them to measure the
// database's ceiling for event inserts.
func UpdateLinodeStmts(p *Principal, l *Linode, now int64) []Stmt {
	e := linodeEvent(p, l, "linode_update", "notification", nil, now)
	up := *l
	up.Updated = now
	return []Stmt{lockLinodeStmt(p, l.ID), updateLinodeStmt(&up), insertEventStmt(e, nil)}
}

func lockLinodeStmt(p *Principal, id int64) Stmt {
	return Stmt{SQL: `SELECT ` + linodeColumns + ` FROM linodes
WHERE account_id = $1 AND id = $2 AND NOT deleted
FOR UPDATE`, Args: []any{p.AccountID, id}}
}

func updateLinodeStmt(l *Linode) Stmt {
	return Stmt{SQL: `UPDATE linodes
SET label = $3, tags = $4, grp = $5, watchdog = $6, alerts = $7,
    backup_day = $8, backup_window = $9, updated = $10
WHERE account_id = $1 AND id = $2`, Args: []any{l.AccountID, l.ID, l.Label, l.TagsJSON, l.Group,
		l.Watchdog, l.AlertsJSON, l.BackupDay, l.BackupWindow, l.Updated}}
}

// linodeColumns are the columns of a Linode in the order dest lists them.
const linodeColumns = `account_id, id, label, region, type, image, status, ipv4, ipv6, tags,
    grp, alerts, watchdog, backups_enabled, backup_day, backup_window, has_user_data,
    host_uuid, jobs_pending, deleted, created, updated`

func (l *Linode) dest() []any {
	return []any{&l.AccountID, &l.ID, &l.Label, &l.Region, &l.Type, &l.Image, &l.Status,
		&l.IPv4JSON, &l.IPv6, &l.TagsJSON, &l.Group, &l.AlertsJSON, &l.Watchdog,
		&l.BackupsEnabled, &l.BackupDay, &l.BackupWindow, &l.HasUserData, &l.HostUUID,
		&l.JobsPending, &l.Deleted, &l.Created, &l.Updated}
}

// scanLinode reads the Linode a statement of linodeColumns returned, or
// nil when it returned none.
func scanLinode(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
}) (*Linode, error) {
	if !rows.Next() {
		return nil, rows.Err()
	}
	var l Linode
	if err := rows.Scan(l.dest()...); err != nil {
		return nil, err
	}
	return &l, rows.Err()
}

// apply changes l as the update asks.
func (in *LinodeUpdate) apply(l *Linode) {
	if in.Label != nil {
		l.Label = *in.Label
	}
	if in.Tags != nil {
		l.TagsJSON = encode(nonNil(*in.Tags))
	}
	if in.Group != nil {
		l.Group = *in.Group
	}
	if in.Watchdog != nil {
		l.Watchdog = *in.Watchdog
	}
	if in.BackupDay != nil {
		l.BackupDay = in.BackupDay
	}
	if in.BackupWindow != nil {
		l.BackupWindow = in.BackupWindow
	}
	if in.Alerts != nil {
		a := l.Alerts()
		in.Alerts(&a)
		l.AlertsJSON = encode(a)
	}
}

// Action is a job a request asks to run on a Linode.
type Action struct {
	Name           string  // event action: linode_boot, linode_shutdown, ...
	Params         string  // JSON the job reads when it ends, e.g. {"booted":true}
	Secondary      *Entity // the event's secondary entity, if any
	Image          *string // rebuild: the new image
	RequireOffline bool    // refuse unless the Linode is offline (password reset)
}

// Act starts an action on a Linode: it claims the Linode, records the event
// (status scheduled) and queues the job, in one transaction. Any action but
// linode_boot on a Linode with a job scheduled or running is ErrBusy, decided
// by one conditional UPDATE so that it holds across processes. Boot is
// queued behind the current job instead.
func (s *Store) Act(ctx context.Context, p *Principal, id int64, a Action) (*Linode, *Event, error) {
	var l Linode
	var e *Event
	err := s.tx(ctx, func(tx bun.Tx) error {
		now := micros(s.now())
		st := transitions[a.Name]
		q := tx.NewUpdate().Model((*Linode)(nil)).
			Set("jobs_pending = jobs_pending + 1").
			Set("updated = ?", now).
			Set("status = CASE WHEN jobs_pending = 0 AND ? <> '' THEN ? ELSE status END",
				st.running, st.running).
			Where("account_id = ? AND id = ? AND NOT deleted", p.AccountID, id)
		if a.Name != "linode_boot" {
			q.Where("jobs_pending = 0")
		}
		if a.RequireOffline {
			q.Where("status = 'offline'")
		}
		if a.Image != nil {
			q.Set("image = ?", *a.Image)
		}
		if a.Name == "linode_delete" {
			q.Set("deleted = ?", true)
		}
		var rows []Linode
		if _, err := q.Returning("*").Exec(ctx, &rows); err != nil {
			return err
		}
		if len(rows) == 0 {
			return s.whyRefused(ctx, tx, p, id, a)
		}
		l = rows[0]
		var err error
		e, err = s.enqueue(ctx, tx, p, &l, a.Name, a.Params, a.Secondary, now)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return &l, e, nil
}

// whyRefused tells apart the reasons a conditional action UPDATE matched
// no row. It reads the Linode again, after the UPDATE: on PostgreSQL a
// job may have ended in between, so a Linode found idle now (and offline,
// when that is required) was busy when the UPDATE ran, as only jobs
// change a Linode's status.
func (s *Store) whyRefused(ctx context.Context, tx bun.Tx, p *Principal, id int64, a Action) error {
	var l Linode
	err := tx.NewSelect().Model(&l).
		Where("l.account_id = ? AND l.id = ? AND NOT l.deleted", p.AccountID, id).
		Scan(ctx)
	switch {
	case err != nil:
		return err
	case l.JobsPending == 0 && a.RequireOffline && l.Status != "offline":
		return &Error{Code: Invalid, Reason: "Linode must be shut down to reset the root password."}
	}
	return ErrBusy
}

// enqueue records a job's event, status scheduled, and queues the job, as
// the transaction's last statement.
// TODO(#4): CreateLinode and Act still send COMMIT one round trip after
// this insert, so they hold the account's counter row that much longer
// than UpdateLinode does; move them to writeTx too.
func (s *Store) enqueue(ctx context.Context, tx bun.Tx, p *Principal, l *Linode,
	action, params string, secondary *Entity, now int64) (*Event, error) {
	zero := 0
	e := linodeEvent(p, l, action, "scheduled", secondary, now)
	e.PercentComplete = &zero
	j := &Job{LinodeID: l.ID, Action: action, Params: params, State: "queued", Created: now}
	if err := s.insertEvent(ctx, tx, e, j); err != nil {
		return nil, err
	}
	return e, nil
}

// linodeEvent builds an event about a Linode, caused by the principal.
func linodeEvent(p *Principal, l *Linode, action, status string, secondary *Entity, now int64) *Event {
	typ, url := "linode", fmt.Sprintf("/v4/linode/instances/%d", l.ID)
	msg := fmt.Sprintf(messages[action], l.Label)
	e := &Event{
		AccountID: p.AccountID, Action: action, Status: status, Username: &p.Username,
		Message: &msg, EntityType: &typ, EntityID: &l.ID, EntityLabel: &l.Label,
		EntityURL: &url, Created: now, Updated: now,
	}
	if secondary != nil {
		s := encode(secondary)
		e.SecondaryJSON = &s
	}
	return e
}

// messages say what an event means, as a person should read it.
var messages = map[string]string{
	"linode_create":   "Creating Linode %s",
	"linode_boot":     "Booting Linode %s",
	"linode_shutdown": "Shutting down Linode %s",
	"linode_reboot":   "Rebooting Linode %s",
	"linode_rebuild":  "Rebuilding Linode %s",
	"linode_delete":   "Deleting Linode %s",
	"linode_update":   "Updated Linode %s",
	"password_reset":  "Resetting the root password of Linode %s",
}

// labelConflict turns a unique violation on a Linode's label into Invalid.
func labelConflict(err error) error {
	var pgErr *pgconn.PgError
	var liteErr *sqlite.Error
	if (errors.As(err, &pgErr) && pgErr.Code == "23505") ||
		(errors.As(err, &liteErr) && liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
		return Errorf(Invalid, "label", "Label must be unique among your Linodes.")
	}
	return err
}

func nonNil(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
