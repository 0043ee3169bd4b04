package db

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Linode is a virtual machine. Its job rows decide whether it is busy:
// JobsPending counts the jobs scheduled or running on it. Its addresses are
// rows of their own, loaded into IPs.
type Linode struct {
	bun.BaseModel `bun:"table:linodes,alias:l"`

	AccountID      int64   `bun:"account_id"`
	ID             int64   `bun:"id,pk,autoincrement"`
	Label          string  `bun:"label"`
	Region         string  `bun:"region"`
	Type           string  `bun:"type"`
	Image          *string `bun:"image"`
	Status         string  `bun:"status"`
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

	BackupsNext           *int64 `bun:"backups_next"`            // next automatic backup is due
	BackupsLastSuccessful *int64 `bun:"backups_last_successful"` // newest successful backup
	BackupsAvailable      bool   `bun:"backups_available"`       // a backup can be restored

	IPs []IPAddress `bun:"-"`
}

// IPv4 returns the Linode's IPv4 addresses, public ones first.
func (l *Linode) IPv4() []string {
	list := []string{}
	for _, ip := range l.IPs {
		if ip.Family == "ipv4" {
			list = append(list, ip.Address)
		}
	}
	return list
}

// IPv6 returns the Linode's SLAAC address as "address/128", or nil.
func (l *Linode) IPv6() *string {
	for _, ip := range l.IPs {
		if ip.Family == "ipv6" {
			s := ip.Address + "/128"
			return &s
		}
	}
	return nil
}

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

// encodeJSON is json.Marshal without HTML escaping, so that stored JSON
// holds "a&b" as it was sent and X-Filter patterns can match it.
func encodeJSON(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
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
	"ipv4":    {kind: kindIPv4},
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
	PrivateIP      bool // also give it a private IPv4 address
	HasUserData    bool
	Alerts         Alerts
	FromBackup     *FromBackup // deploy one of the caller's backups instead of an image
}

// FromBackup says which backup a new Linode is deployed from.
type FromBackup struct {
	ID int64

	// Fits returns why the backup's disks do not fit on the new Linode, or
	// nil. The store knows no plan sizes; the caller does.
	Fits func(b *Backup, target *Linode) error
}

// CreateLinode creates a Linode in status provisioning, with its
// addresses, its linode_create event and the job that provisions it, in one
// transaction. A label already used in the account is Invalid.
func (s *Store) CreateLinode(ctx context.Context, p *Principal, in NewLinode) (*Linode, error) {
	now := micros(s.now())
	l := &Linode{
		AccountID: p.AccountID, Label: in.Label, Region: in.Region, Type: in.Type,
		Image: in.Image, Status: "provisioning", TagsJSON: tagsJSON(in.Tags),
		Group: in.Group, AlertsJSON: encodeJSON(in.Alerts), Watchdog: true,
		HasUserData: in.HasUserData, HostUUID: newUUID(), JobsPending: 1, Created: now, Updated: now,
	}
	if in.BackupsEnabled {
		s.enableBackups(l, now)
	}
	if l.Label == "" {
		l.Label = l.HostUUID // unique placeholder until the id is known
	}
	var secondary *Entity
	if in.Image != nil {
		secondary = &Entity{ID: *in.Image, Label: in.ImageLabel, Type: "image",
			URL: "/v4/images/" + *in.Image}
	}
	err := s.tx(ctx, func(tx bun.Tx) error {
		if in.FromBackup != nil {
			b, err := s.deployable(ctx, tx, p, l, in.FromBackup)
			if err != nil {
				return err
			}
			l.Image, secondary = b.Image, backupEntity(b)
			in.Booted = in.Booted && b.Image != nil
		}
		if _, err := tx.NewInsert().Model(l).Returning("id").Exec(ctx); err != nil {
			return labelConflict(err)
		}
		if in.Label == "" {
			label, err := freeLabel(ctx, tx, l)
			if err != nil {
				return err
			}
			l.Label = label
			_, err = tx.NewUpdate().Model(l).Column("label").
				Where("account_id = ? AND id = ?", l.AccountID, l.ID).Exec(ctx)
			if err != nil {
				return labelConflict(err)
			}
		}
		if err := s.addIPs(ctx, tx, l, in.PrivateIP); err != nil {
			return err
		}

		params := map[string]any{"booted": in.Booted}
		if in.FromBackup != nil {
			params["backup_id"] = in.FromBackup.ID
		}
		_, err := enqueue(ctx, tx, p, l, "linode_create", encodeJSON(params), secondary, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// freeLabel picks the generated label of a new Linode: linode<id>, or,
// when the user already gave that label to another Linode, the first free
// linode<id>-<n>.
func freeLabel(ctx context.Context, tx bun.Tx, l *Linode) (string, error) {
	base := "linode" + strconv.FormatInt(l.ID, 10)
	for n := 1; ; n++ {
		label := base
		if n > 1 {
			label = fmt.Sprintf("%s-%d", base, n)
		}
		taken, err := tx.NewSelect().Model((*Linode)(nil)).
			Where("l.account_id = ? AND l.label = ? AND NOT l.deleted", l.AccountID, label).
			Exists(ctx)
		if err != nil || !taken {
			return label, err
		}
	}
}

// GetLinode returns one Linode of the caller's account, or ErrNotFound.
func (s *Store) GetLinode(ctx context.Context, p *Principal, id int64) (*Linode, error) {
	if s.pg {
		return s.getLinodePG(ctx, p, id)
	}
	var l Linode
	if err := linodeQuery(s.db, p, id, &l).Scan(ctx); err != nil {
		return nil, translate(err)
	}
	if err := withIPs(ctx, s.db, p.AccountID, &l); err != nil {
		return nil, translate(err)
	}
	return &l, nil
}

// getLinodePG is GetLinode on PostgreSQL: one prepared statement
// (linodeSQL) reads the Linode and its addresses.
func (s *Store) getLinodePG(ctx context.Context, p *Principal, id int64) (*Linode, error) {
	rows, err := s.queryRow(ctx, ErrNotFound, linodeSQL, p.AccountID, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var row struct {
		Linode  `bun:",extend"`
		IPsJSON []byte `bun:"ips_json"`
	}
	if err := s.db.ScanRow(ctx, rows, &row); err != nil {
		return nil, translate(err)
	}
	if row.IPsJSON != nil {
		if err := json.Unmarshal(row.IPsJSON, &row.IPs); err != nil {
			return nil, fmt.Errorf("db: the addresses of Linode %d: %w", id, err)
		}
	}
	return &row.Linode, nil
}

// linodeSQL reads one of the caller's Linodes, as linodeQuery does, with
// its addresses as a JSON array in the order of linodeIPsQuery, whose
// keys are the fields of IPAddress. Arguments: account, Linode.
var linodeSQL = func() string {
	var cols []string
	for _, f := range pgFormat.Table(reflect.TypeFor[Linode]()).Fields {
		cols = append(cols, "l."+f.Name)
	}
	return `SELECT ` + strings.Join(cols, ", ") + `, (
    SELECT json_agg(json_build_object('AccountID', ip.account_id, 'Address', ip.address,
            'LinodeID', ip.linode_id, 'Family', ip.family, 'Public', ip.public,
            'Prefix', ip.prefix, 'Gateway', ip.gateway, 'Region', ip.region, 'RDNS', ip.rdns,
            'Created', ip.created)
        ORDER BY ip.family, ip.public DESC, ip.created, ip.address)
    FROM ips AS ip
    WHERE ip.account_id = l.account_id AND ip.linode_id = l.id
) AS ips_json
FROM linodes AS l
WHERE l.account_id = $1 AND l.id = $2 AND NOT l.deleted`
}()

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
	base := func(sel *bun.SelectQuery) *bun.SelectQuery {
		sel.Where("l.account_id = ? AND NOT l.deleted", p.AccountID)
		if f.where != "" {
			sel.Where(f.where, append([]any{nil, nil}, f.args...)...)
		}
		return sel
	}

	total, err := base(s.db.NewSelect().Model((*Linode)(nil))).Count(ctx)
	if err != nil {
		return nil, translate(err)
	}
	ep := newPage(q, int64(total))
	page := &LinodePage{Linodes: []Linode{}, Page: ep.Page, Pages: ep.Pages, Results: ep.Results}
	dir := "ASC"
	if f.descending(false) {
		dir = "DESC"
	}
	order := "l.id " + dir
	if fd, ok := linodeFields[f.orderBy]; ok && f.orderBy != "id" {
		order = fmt.Sprintf("%s %s, l.id %s", fd.column, dir, dir)
	}
	err = base(s.db.NewSelect().Model(&page.Linodes)).
		OrderExpr(order).
		Limit(int64(q.PageSize)).
		Offset(q.skip()).
		Scan(ctx)
	if err != nil {
		return nil, translate(err)
	}
	ls := make([]*Linode, len(page.Linodes))
	for i := range page.Linodes {
		ls[i] = &page.Linodes[i]
	}
	return page, translate(withIPs(ctx, s.db, p.AccountID, ls...))
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
// On PostgreSQL it sends the statements UpdateLinodeStmts lists, one round
// trip each, unless another request changed the settings meanwhile; then,
// as on SQLite, it locks the Linode in one transaction. Either way it
// checks that the caller's token is not revoked, with the change: the
// caller may come through IdentifyToken.
func (s *Store) UpdateLinode(ctx context.Context, p *Principal, id int64, in LinodeUpdate) (*Linode, error) {
	if s.pg {
		if l, err := s.updateLinodeAtOnce(ctx, p, id, in); l != nil || err != nil {
			return l, err
		}
	}
	var l Linode
	// Each attempt reads the Linode afresh and sets every field it returns.
	err := retry(func() error {
		return s.tx(ctx, func(tx bun.Tx) error {
			if err := checkTokenLive(ctx, tx, p); err != nil {
				return err
			}
			if err := lockLinodeQuery(tx, p, id, &l).Scan(ctx); err != nil {
				return err
			}
			s.change(&l, in)
			if _, err := updateLinodeQuery(tx, &l).Exec(ctx); err != nil {
				return labelConflict(err)
			}
			if err := withIPs(ctx, tx, p.AccountID, &l); err != nil {
				return err
			}
			return insertEvent(ctx, tx, linodeEvent(p, &l, "linode_update", "notification", nil, l.Updated))
		})
	})
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// updateLinodeAtOnce is UpdateLinode on PostgreSQL while nothing else
// changes the Linode's settings: it reads the Linode and its addresses,
// then stores the new settings and records the event in one statement
// (updateLinodeSQL), which changes nothing unless the settings are still
// those it read. It returns nil and no error when they were not, when the
// Linode is not found (or went meanwhile), or when the token is revoked:
// the locking path sorts these out.
//
// NOTE: the read and the write are two transactions, made one by the
// comparison, so that an update costs three round trips and one commit
// rather than six and one, and the account's event counter stays locked
// for one statement and its commit; updates of one account in flight at
// once share that commit (groupWrite).
func (s *Store) updateLinodeAtOnce(ctx context.Context, p *Principal, id int64,
	in LinodeUpdate) (*Linode, error) {
	l, err := s.GetLinode(ctx, p, id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil // the locking path tells a revoked token from a missing Linode
	}
	if err != nil {
		return nil, err
	}
	old := *l
	s.change(l, in)
	st := updateLinodeStmt(p, &old, l)
	updated, err := s.groupWrite(ctx, p.AccountID, id, st)
	if err != nil || !updated {
		return nil, labelConflict(err)
	}
	return l, nil
}

// change applies an update to l as read, with what follows from it: the
// time of the change and, when the backup window moved, the next backup.
func (s *Store) change(l *Linode, in LinodeUpdate) {
	in.apply(l)
	l.Updated = micros(s.now())
	if in.BackupWindow != nil && l.BackupsEnabled {
		l.BackupsNext = ptr(s.nextBackup(l, l.Updated))
	}
}

// updateLinodeStmt is the statement of updateLinodeAtOnce: it stores l's
// settings and records its linode_update event, if old's are still stored.
func updateLinodeStmt(p *Principal, old, l *Linode) Stmt {
	args := insertEventStmt(linodeEvent(p, l, "linode_update", "notification", nil, l.Updated),
		nil).Args
	for _, x := range []*Linode{l, old} {
		args = append(args, x.Label, x.TagsJSON, x.Group, x.Watchdog, x.AlertsJSON, x.BackupDay,
			x.BackupWindow, x.BackupsNext)
	}
	return Stmt{SQL: updateLinodeSQL, Args: append(args, l.ID, old.BackupsEnabled, p.TokenID)}
}

// updateLinodeSQL stores what updateLinodeQuery stores if the Linode's
// settings are still as read, and then only appends its event and
// announces it. Arguments: those of insertEventSQL (the event's updated is
// the Linode's), then the new label, tags, group, watchdog, alerts, backup
// day, backup window and next backup; the same as read; the Linode's id,
// whether its backups were enabled, and the caller's token, which must not
// be revoked (see Store.IdentifyToken).
var updateLinodeSQL = `WITH l AS (
    UPDATE linodes SET label = $17, tags = $18, grp = $19, watchdog = $20, alerts = $21,
        backup_day = $22, backup_window = $23, backups_next = $24, updated = $16
    WHERE account_id = $1 AND id = $33 AND NOT deleted AND backups_enabled = $34
        AND ` + tokenLiveAt("$35") + `
        AND label = $25 AND tags = $26 AND grp = $27 AND watchdog = $28 AND alerts = $29
        AND backup_day IS NOT DISTINCT FROM $30 AND backup_window IS NOT DISTINCT FROM $31
        AND backups_next IS NOT DISTINCT FROM $32
    RETURNING id
), ` + appendEvent(" AND EXISTS (SELECT 1 FROM l)") + `
SELECT e.id FROM e, ` + notifyEvents

// UpdateLinodeStmts returns the statements UpdateLinode sends on
// PostgreSQL, in order, each its own transaction, to store l's settings as
// they are and record the linode_update event at now: the read of the
// Linode and its addresses (GetLinode), then updateLinodeSQL, both
// prepared, as the server's are. The bench replays them to measure the
// database's ceiling for event inserts; the server also shares the write's
// commit with the other writes of the account in flight (groupWrite), which
// the replay does not.
func UpdateLinodeStmts(p *Principal, l *Linode, now int64) []Stmt {
	up := *l
	up.Updated = now
	return []Stmt{
		{SQL: linodeSQL, Args: []any{p.AccountID, l.ID}},
		updateLinodeStmt(p, l, &up),
	}
}

// pgFormat writes bun's PostgreSQL statements as text; it never connects.
var pgFormat = bun.NewDB(sql.OpenDB(stdlib.GetConnector(pgx.ConnConfig{})), pgdialect.New())

// linodeQuery reads one of the caller's Linodes into l.
func linodeQuery(db bun.IDB, p *Principal, id int64, l *Linode) *bun.SelectQuery {
	return db.NewSelect().Model(l).Where("l.account_id = ? AND l.id = ? AND NOT l.deleted", p.AccountID, id)
}

// lockLinodeQuery reads one of the caller's Linodes into l, locking its
// row until the transaction ends. Only PostgreSQL needs (and has) the
// clause: SQLite locks the whole database for a write transaction.
func lockLinodeQuery(db bun.IDB, p *Principal, id int64, l *Linode) *bun.SelectQuery {
	sel := linodeQuery(db, p, id, l)
	if db.Dialect().Name() == dialect.PG {
		sel = sel.For("UPDATE")
	}
	return sel
}

// updateLinodeQuery stores the settings an update may change.
func updateLinodeQuery(db bun.IDB, l *Linode) *bun.UpdateQuery {
	return db.NewUpdate().Model(l).
		Column("label", "tags", "grp", "watchdog", "alerts", "backup_day", "backup_window", "backups_next",
			"updated").
		Where("account_id = ? AND id = ?", l.AccountID, l.ID)
}

// apply changes l as the update asks.
func (in *LinodeUpdate) apply(l *Linode) {
	if in.Label != nil {
		l.Label = *in.Label
	}
	if in.Tags != nil {
		l.TagsJSON = tagsJSON(*in.Tags)
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
		l.AlertsJSON = encodeJSON(a)
	}
}

// Action is a job a request asks to run on a Linode.
type Action struct {
	Name           string  // event action: linode_boot, linode_shutdown, ...
	Params         string  // JSON the job reads when it ends, e.g. {"booted":true}
	Secondary      *Entity // the event's secondary entity, if any
	Image          *string // rebuild, restore: the image the Linode runs from now on
	Type           *string // rebuild: the plan the Linode moves to
	ClearImage     bool    // restore of a backup without disks: the Linode has no image
	RequireOffline bool    // refuse unless the Linode is offline (password reset)
	RequireBackups bool    // refuse unless backups are enabled (snapshot)
}

// Act starts an action on a Linode: it claims the Linode, records the event
// (status scheduled) and queues the job, in one transaction. Any action but
// linode_boot on a Linode with a job scheduled or running is ErrBusy, decided
// by one conditional UPDATE so that it holds across processes. A boot is
// queued behind the current job instead, unless a job already waits there:
// so at most one job ever waits, and no client can keep a Linode busy by
// piling boots on it.
func (s *Store) Act(ctx context.Context, p *Principal, id int64, a Action) (*Linode, *Event, error) {
	var l *Linode
	var e *Event
	// Each attempt sets l and e afresh; claim only sets keys of a.Params.
	err := retry(func() error {
		return s.tx(ctx, func(tx bun.Tx) error {
			now := micros(s.now())
			var err error
			if l, err = s.claim(ctx, tx, p, id, &a, now); err != nil {
				return err
			}
			if err := withIPs(ctx, tx, p.AccountID, l); err != nil {
				return err
			}
			e, err = enqueue(ctx, tx, p, l, a.Name, a.Params, a.Secondary, now)
			return err
		})
	})
	if err != nil {
		return nil, nil, err
	}
	return l, e, nil
}

// claim counts one more job on a Linode and moves it to the action's
// running status when it was idle. The busy rule is one conditional UPDATE,
// so that it holds across processes: any action but linode_boot on a Linode
// with a job scheduled or running is ErrBusy. It may add to a.Params what
// the job needs to undo the change if it fails.
func (s *Store) claim(ctx context.Context, tx bun.Tx, p *Principal, id int64, a *Action,
	now int64) (*Linode, error) {
	st := transitions[a.Name]
	q := tx.NewUpdate().Model((*Linode)(nil)).
		Set("jobs_pending = jobs_pending + 1").
		Set("updated = ?", now).
		Set("status = CASE WHEN jobs_pending = 0 AND ? <> '' THEN ? ELSE status END",
			st.running, st.running).
		Where("account_id = ? AND id = ? AND NOT deleted", p.AccountID, id)
	if a.Name == "linode_boot" {
		q.Where("jobs_pending <= 1")
	} else {
		q.Where("jobs_pending = 0")
	}
	if a.RequireOffline {
		q.Where("status = 'offline'")
	}
	if a.RequireBackups {
		q.Where("backups_enabled")
	}
	if a.Image != nil || a.ClearImage {
		// A failed rebuild or restore puts the image and plan it replaced back.
		var err error
		if a.Params, err = withPrevious(ctx, tx, p, id, a.Params); err != nil {
			return nil, err
		}
	}
	switch {
	case a.Image != nil:
		q.Set("image = ?", *a.Image)
	case a.ClearImage:
		q.Set("image = NULL")
	}
	if a.Type != nil {
		q.Set("type = ?", *a.Type)
	}
	if a.Name == "linode_delete" {
		q.Set("deleted = ?", true)
	}
	var rows []Linode
	if _, err := q.Returning("*").Exec(ctx, &rows); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, s.whyRefused(ctx, tx, p, id, *a)
	}
	if a.Name == "linode_delete" {
		// Deleting a Linode deletes its backups.
		if err := backupsInUse(ctx, tx, p.AccountID, id); err != nil {
			return nil, err
		}
	}
	return &rows[0], nil
}

// withPrevious returns a job's params with the Linode's current image (or
// null) as "previous_image" and plan as "previous_type", so that a failed
// rebuild or restore can put them back.
func withPrevious(ctx context.Context, tx bun.Tx, p *Principal, id int64,
	params string) (string, error) {
	var was []Linode
	err := tx.NewSelect().Model(&was).Column("image", "type").
		Where("l.account_id = ? AND l.id = ?", p.AccountID, id).Scan(ctx)
	if err != nil || len(was) == 0 {
		return params, err
	}
	m := map[string]any{}
	_ = json.Unmarshal([]byte(params), &m)
	m["previous_image"], m["previous_type"] = was[0].Image, was[0].Type
	return encodeJSON(m), nil
}

// whyRefused tells apart the reasons a conditional action UPDATE matched
// no row. It reads the Linode again, after the UPDATE: on PostgreSQL a
// job may have ended in between, so a Linode found idle now (and offline,
// or with backups, when that is required) was busy when the UPDATE ran, as
// only jobs change a Linode's status. (Backups can be cancelled or enabled
// in between too: then the reason may be off, never the refusal.)
func (s *Store) whyRefused(ctx context.Context, tx bun.Tx, p *Principal, id int64,
	a Action) error {
	var l Linode
	err := tx.NewSelect().Model(&l).
		Where("l.account_id = ? AND l.id = ? AND NOT l.deleted", p.AccountID, id).
		Scan(ctx)
	switch {
	case err != nil:
		return err
	case l.JobsPending == 0 && a.RequireBackups && !l.BackupsEnabled:
		return ErrBackupsDisabled
	case l.JobsPending == 0 && a.RequireOffline && l.Status != "offline":
		return &Error{Code: Invalid, Reason: "Linode must be shut down to reset the root password."}
	}
	return ErrBusy
}

// enqueue records a job's event, status scheduled, and queues the job, in
// one statement on PostgreSQL, as the transaction's last statement.
func enqueue(ctx context.Context, tx bun.Tx, p *Principal, l *Linode,
	action, params string, secondary *Entity, now int64) (*Event, error) {
	zero := 0
	e := linodeEvent(p, l, action, "scheduled", secondary, now)
	e.PercentComplete = &zero
	j := &Job{LinodeID: l.ID, Action: action, Params: params, State: "queued", Created: now}
	if err := insertEventJob(ctx, tx, e, j); err != nil {
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
		s := encodeJSON(secondary)
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
	"backups_enable":  "Enabled backups of Linode %s",
	"backups_cancel":  "Cancelled backups of Linode %s",
	"linode_snapshot": "Taking a snapshot of Linode %s",
	"backups_restore": "Restoring a backup onto Linode %s",
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

// lockForUpdate makes a select lock the rows it reads until the
// transaction ends. Only PostgreSQL needs (and has) the clause: SQLite
// locks the whole database for a write transaction, and bun would send
// an empty FOR clause to it.
func (s *Store) lockForUpdate(sel *bun.SelectQuery) *bun.SelectQuery {
	if s.IsPostgres() {
		sel = sel.For("UPDATE")
	}
	return sel
}

// tagsJSON is the stored form of a Linode's tags: a JSON array, never
// null, with each tag once, in the order first given.
func tagsJSON(tags []string) string {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return encodeJSON(out)
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
