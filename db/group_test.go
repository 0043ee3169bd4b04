package db

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"apiv4/db/dbtest"
)

// groupFixture is a PostgreSQL store with an account of n Linodes and the
// principal of a token of its user.
func groupFixture(t *testing.T, n int) (*Store, *Principal, []*Linode) {
	t.Helper()
	ctx := context.Background()
	s, secret := mustTokenStore(t, dbtest.PostgresURL(t))
	p, err := s.Authenticate(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	ls := make([]*Linode, n)
	for i := range ls {
		ls[i], err = s.CreateLinode(ctx, p, NewLinode{Region: "us-east", Type: "g6-nanode-1",
			Label: fmt.Sprint("web-", i)})
		if err != nil {
			t.Fatal(err)
		}
	}
	return s, p, ls
}

// relabel returns the write of updateLinodeAtOnce that renames l.
func relabel(p *Principal, l *Linode, label string) *groupWrite {
	up := *l
	up.Label = label
	up.Updated = l.Updated + 1
	return &groupWrite{linode: l.ID, st: updateLinodeStmt(p, l, &up)}
}

// labels returns the account's Linode labels by id.
func labels(t *testing.T, s *Store, p *Principal) map[int64]string {
	t.Helper()
	var rows []Linode
	err := s.db.NewSelect().Model(&rows).Where("account_id = ?", p.AccountID).Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[int64]string{}
	for _, l := range rows {
		m[l.ID] = l.Label
	}
	return m
}

// TestGroupSendsOneTransaction sends three updates as one batch, which
// one transaction writes: each finds its row and records its event, with consecutive seqs, and a second
// update of the same Linode in the batch sees the first and changes nothing.
func TestGroupSendsOneTransaction(t *testing.T) {
	ctx := context.Background()
	s, p, ls := groupFixture(t, 2)
	before, err := s.CountEvents(ctx, p.AccountID)
	if err != nil {
		t.Fatal(err)
	}
	batch := []*groupWrite{relabel(p, ls[1], "b"), relabel(p, ls[0], "a"), relabel(p, ls[1], "again")}
	s.sendGroup(ctx, p.AccountID, batch)
	for i, want := range []bool{true, true, false} {
		if batch[i].err != nil || batch[i].found != want {
			t.Errorf("write %d: found %v, err %v; want found %v", i, batch[i].found, batch[i].err, want)
		}
	}
	if got := labels(t, s, p); got[ls[0].ID] != "a" || got[ls[1].ID] != "b" {
		t.Errorf("labels %v, want a and b", got)
	}
	var xmins []string
	err = s.db.NewSelect().Table("linodes").ColumnExpr("xmin::text").
		Where("account_id = ?", p.AccountID).Scan(ctx, &xmins)
	if err != nil {
		t.Fatal(err)
	}
	if len(xmins) != 2 || xmins[0] != xmins[1] {
		t.Errorf("the Linodes were last written by transactions %v, want one", xmins)
	}
	var seqs []int64
	err = s.db.NewSelect().Table("events").Column("seq").
		Where("account_id = ? AND action = 'linode_update'", p.AccountID).Order("seq").Scan(ctx, &seqs)
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 2 || seqs[1] != seqs[0]+1 || seqs[0] != int64(before)+1 {
		t.Errorf("linode_update seqs %v, want %d and %d", seqs, before+1, before+2)
	}
}

// TestGroupFailureFailsOnlyItsWrite: a batch in which one statement fails
// (a label taken by another Linode) is rolled back and run again write by
// write, so that the others still succeed and only that one fails.
func TestGroupFailureFailsOnlyItsWrite(t *testing.T) {
	ctx := context.Background()
	s, p, ls := groupFixture(t, 3)
	batch := []*groupWrite{relabel(p, ls[0], "first"), relabel(p, ls[1], "web-2"), relabel(p, ls[2], "third")}
	s.sendGroup(ctx, p.AccountID, batch)
	if !batch[0].found || batch[0].err != nil || !batch[2].found || batch[2].err != nil {
		t.Errorf("the writes around the failing one: %+v, %+v; want both found", batch[0], batch[2])
	}
	if ErrorCode(labelConflict(batch[1].err)) != Invalid {
		t.Errorf("the write of a taken label: err %v, want the label conflict", batch[1].err)
	}
	want := map[int64]string{ls[0].ID: "first", ls[1].ID: "web-1", ls[2].ID: "third"}
	if got := labels(t, s, p); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("labels %v, want %v", got, want)
	}
}

// TestGroupConcurrentUpdates has eight writers update their own Linode of
// one account at once through UpdateLinode: every update is stored with
// its event, the account's seqs stay dense, and some commits are shared.
func TestGroupConcurrentUpdates(t *testing.T) {
	const writers, each = 8, 40
	ctx := context.Background()
	s, p, ls := groupFixture(t, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				tags := []string{fmt.Sprint("t", i)}
				l, err := s.UpdateLinode(ctx, p, ls[w].ID, LinodeUpdate{Tags: &tags})
				if err == nil && l.Tags()[0] != tags[0] {
					err = fmt.Errorf("writer %d got tags %v, want %v", w, l.Tags(), tags)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var st struct {
		N   int64 `bun:"n"`
		Min int64 `bun:"lo"`
		Max int64 `bun:"hi"`
	}
	err := s.db.NewSelect().Table("events").ColumnExpr("count(*) AS n, min(seq) AS lo, max(seq) AS hi").
		Where("account_id = ?", p.AccountID).Scan(ctx, &st)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(writers + writers*each); st.N != want || st.Max-st.Min+1 != st.N {
		t.Errorf("%d events with seqs %d..%d, want %d dense", st.N, st.Min, st.Max, want)
	}
	commits, writes := s.GroupCommits()
	if writes != writers*each || commits >= writes {
		t.Errorf("%d writes in %d commits, want %d writes, some sharing a commit", writes, commits, writers*each)
	}
}

// TestGetLinodeInOneStatement holds the one statement of GetLinode on
// PostgreSQL to what bun's two reads of the Linode and its addresses give,
// for a Linode with public, private and IPv6 addresses and a reverse DNS
// name set, and finds no deleted or other account's Linode.
func TestGetLinodeInOneStatement(t *testing.T) {
	ctx := context.Background()
	s, p, _ := groupFixture(t, 0)
	l, err := s.CreateLinode(ctx, p, NewLinode{Region: "eu-west", Type: "g6-nanode-1", PrivateIP: true})
	if err != nil {
		t.Fatal(err)
	}
	name := "www.example.com"
	if _, err := s.SetRDNS(ctx, p, l.ID, l.IPs[0].Address, &name); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetLinode(ctx, p, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	var want Linode
	if err := linodeQuery(s.db, p, l.ID, &want).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if err := withIPs(ctx, s.db, p.AccountID, &want); err != nil {
		t.Fatal(err)
	}
	if len(want.IPs) != 3 || !reflect.DeepEqual(*got, want) {
		t.Errorf("GetLinode = %+v\nbun reads %+v", *got, want)
	}
	other := *p
	other.AccountID++
	for _, tt := range []struct {
		p  *Principal
		id int64
	}{{p, l.ID + 1}, {&other, l.ID}} {
		if _, err := s.GetLinode(ctx, tt.p, tt.id); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetLinode(account %d, %d): err %v, want not found", tt.p.AccountID, tt.id, err)
		}
	}
}

// TestEventsCreatedInIDOrder: an event is never created before the one
// the account recorded before it, even when its time was read earlier
// (here, a clock set back an hour, as a writer that waited behind others
// would have read it), so that clients polling by created miss nothing.
func TestEventsCreatedInIDOrder(t *testing.T) {
	ctx := context.Background()
	s, p, ls := groupFixture(t, 1)
	at := time.Now()
	for _, now := range []time.Time{at, at.Add(-time.Hour), at.Add(time.Second)} {
		s.SetClock(func() time.Time { return now })
		tags := []string{now.String()}
		if _, err := s.UpdateLinode(ctx, p, ls[0].ID, LinodeUpdate{Tags: &tags}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Act(ctx, p, ls[0].ID, Action{Name: "linode_shutdown"}); err != nil &&
			!errors.Is(err, ErrBusy) {
			t.Fatal(err)
		}
	}
	var created []int64
	err := s.db.NewSelect().Table("events").Column("created").Where("account_id = ?", p.AccountID).
		Order("id").Scan(ctx, &created)
	if err != nil {
		t.Fatal(err)
	}
	if len(created) < 4 || !slices.IsSorted(created) {
		t.Errorf("created in id order: %v, want non-decreasing", created)
	}
	if last := created[len(created)-1]; last != at.Add(time.Second).UnixMicro() {
		t.Errorf("the last event was created at %d, want its own time %d", last, at.Add(time.Second).UnixMicro())
	}
}

// TestRetryDeadlocks: retry runs a transaction again after a deadlock or
// a serialization failure, up to retryAttempts times, and never after
// any other error.
func TestRetryDeadlocks(t *testing.T) {
	for _, tt := range []struct {
		code      string
		failures  int
		wantCalls int
		wantErr   bool
	}{
		{"40P01", 1, 2, false},
		{"40001", 2, 3, false},
		{"40P01", 5, retryAttempts, true},
		{"23505", 1, 1, true},
	} {
		calls := 0
		err := retry(func() error {
			if calls++; calls <= tt.failures {
				return fmt.Errorf("db: %w", &pgconn.PgError{Code: tt.code})
			}
			return nil
		})
		if calls != tt.wantCalls || (err != nil) != tt.wantErr {
			t.Errorf("%s failing %d times: %d calls, err %v; want %d calls, error %v",
				tt.code, tt.failures, calls, err, tt.wantCalls, tt.wantErr)
		}
	}
}
