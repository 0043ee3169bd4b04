package conformance

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"testing"

	"apiv4/db/dbtest"
	"apiv4/gen"
)

// attempts bounds the tries of a check that needs a job still running
// when its request arrives. A job takes simDuration, so a slow machine
// may let it end first; the check then starts again on a new Linode.
const attempts = 3

// An action is a request that starts a job on a Linode.
type action struct {
	name, method, suffix string
	body                 any
	event                string // the action of the event it records
}

// actions are the actions but boot, which a busy Linode refuses.
var actions = []action{
	{"shutdown", "POST", "/shutdown", map[string]any{}, "linode_shutdown"},
	{"reboot", "POST", "/reboot", map[string]any{}, "linode_reboot"},
	{"rebuild", "POST", "/rebuild",
		map[string]any{"image": "linode/debian12", "root_pass": testPassword}, "linode_rebuild"},
	{"password reset", "POST", "/password",
		map[string]any{"root_pass": testPassword}, "password_reset"},
	{"delete", "DELETE", "", nil, "linode_delete"},
}

// boot is the action a busy Linode accepts, to run after its job.
var boot = action{"boot", "POST", "/boot", map[string]any{}, "linode_boot"}

// do sends the action to a Linode.
func (act action) do(a *api, id int) *reply {
	a.tb.Helper()
	return a.do(act.method, fmt.Sprint("/linode/instances/", id, act.suffix), act.body)
}

// send is do for goroutines other than the test's.
func (act action) send(a *api, id int) (*reply, error) {
	return a.send(act.method, fmt.Sprint("/linode/instances/", id, act.suffix), act.body)
}

// TestBusyRefusal checks that every action but boot is refused with
// exactly "Linode busy." while a job runs, and that a boot is accepted
// and waits for the job.
func TestBusyRefusal(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		for _, act := range actions {
			t.Run(act.name, func(t *testing.T) {
				a := tg.api(t, tg.owner)
				var r *reply
				for try := 1; try <= attempts; try++ {
					l := newLinode(t, a, tg, false)
					if r = act.do(a, l.Id); r.isBusy() {
						break
					}
					t.Logf("try %d: got %d, the create job may have ended first", try, r.Status)
				}
				r.wantError(t, http.StatusBadRequest, "Linode busy.", "")
			})
		}

		t.Run("boot", func(t *testing.T) {
			a := tg.api(t, tg.owner)
			for try := 1; try <= attempts; try++ {
				l := newLinode(t, a, tg, false)
				a.must(http.StatusOK, "POST", fmt.Sprintf("/linode/instances/%d/boot", l.Id), nil)
				// The boot is looked at before the create: if the create
				// has not finished by then, the boot cannot have started.
				booting := linodeEvents(t, a, l.Id, map[string]any{"action": "linode_boot"})
				creating := linodeEvents(t, a, l.Id, map[string]any{"action": "linode_create"})
				if len(booting) != 1 || len(creating) != 1 {
					t.Fatalf("got %d boot and %d create events, want 1 each", len(booting), len(creating))
				}
				if creating[0].Status == "finished" {
					t.Logf("try %d: the create job ended before the boot could be seen", try)
					continue
				}
				if booting[0].Status != "scheduled" {
					t.Errorf("got a boot %s while the create job runs, want scheduled", booting[0].Status)
				}
				waitBootAfterCreate(t, a, l.Id, booting[0].Id, creating[0].Id)
				return
			}
			t.Fatalf("the create job ended before the boot could be seen %d times", attempts)
		})
	})
}

// waitBootAfterCreate waits until the boot has finished, checking that
// it never runs before the create has finished, and that the Linode ends
// up running.
func waitBootAfterCreate(t *testing.T, a *api, id, bootID, createID int) {
	t.Helper()
	eventually(t, "the boot to finish", func() (bool, string) {
		var b, c gen.Event
		a.must(http.StatusOK, "GET", fmt.Sprint("/account/events/", bootID), nil).decode(t, &b)
		a.must(http.StatusOK, "GET", fmt.Sprint("/account/events/", createID), nil).decode(t, &c)
		if b.Status != "scheduled" && c.Status != "finished" {
			t.Fatalf("the boot is %s while the create is %s", b.Status, c.Status)
		}
		return b.Status == "finished", "boot " + string(b.Status)
	})
	if l := waitIdle(t, a, id); l.Status != "running" {
		t.Errorf("got status %s after the boot, want running", l.Status)
	}
}

// TestBusyRetry checks that linodego's own retry on "Linode busy." makes
// a shutdown sent during a job succeed once the job ends, with one event.
func TestBusyRetry(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		a := tg.api(t, tg.owner)
		for try := 1; try <= attempts; try++ {
			l := newLinode(t, a, tg, true)
			c, tr := tg.linodego(t, tg.owner)
			if err := c.ShutdownInstance(context.Background(), l.Id); err != nil {
				t.Fatalf("ShutdownInstance: %v", err)
			}
			var busy, ok int
			for _, x := range tr.exchanges() {
				switch {
				case x.Op == "shutdownLinodeInstance" && x.Status == http.StatusBadRequest:
					busy++
				case x.Op == "shutdownLinodeInstance" && x.Status == http.StatusOK:
					ok++
				}
			}
			if busy == 0 {
				t.Logf("try %d: the create job ended before the first shutdown", try)
				continue
			}
			if ok != 1 {
				t.Errorf("got %d accepted shutdowns after %d busy replies, want 1", ok, busy)
			}

			if got := waitIdle(t, a, l.Id); got.Status != "offline" {
				t.Errorf("got status %s after the shutdown, want offline", got.Status)
			}
			events := linodeEvents(t, a, l.Id, nil)
			if len(events) != 2 || events[0].Action != "linode_shutdown" ||
				events[1].Action != "linode_create" {
				t.Fatalf("got events %+v, want one create then one shutdown", events)
			}
			for _, e := range events {
				if e.Status != "finished" {
					t.Errorf("got %s %s, want finished", e.Action, e.Status)
				}
			}
			return
		}
		t.Fatalf("the create job ended before the first shutdown %d times", attempts)
	})
}

// TestBusyAcrossProcesses fires concurrent actions at one Linode through
// three server processes sharing one PostgreSQL database, and checks
// that exactly one action but a boot was accepted, and one boot to wait behind
// it, across processes.
func TestBusyAcrossProcesses(t *testing.T) {
	if !local() {
		t.Skip("needs three server processes of its own")
	}
	databaseURL := migrated(t, dbtest.PostgresURL(t))
	token, err := createToken(databaseURL, "alice", "acme", "*")
	if err != nil {
		t.Fatal(err)
	}
	const processes = 3
	apis, tg := startProcesses(t, databaseURL, token, processes)
	a := apis[0]
	l := newIdleLinode(t, a, tg, false) // offline, so that a password reset may win too
	created := linodeEvents(t, a, l.Id, nil)[0].Id

	// Boots wait until a first other action has been answered, so that
	// one of those finds the Linode idle; the rest go all at once.
	const requests = 50
	var all []action // no delete: the Linode must stay
	for _, act := range actions {
		if act.name != "delete" {
			all = append(all, act)
		}
	}
	all = append(all, boot)
	replies := make([]*reply, requests)
	errs := make([]error, requests)
	start, answered := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for i := range requests {
		act := all[i%len(all)]
		wg.Go(func() {
			<-start
			if act.name == boot.name {
				<-answered
			}
			replies[i], errs[i] = act.send(apis[i%processes], l.Id)
			if act.name != boot.name {
				once.Do(func() { close(answered) })
			}
		})
	}
	close(start)
	wg.Wait()

	accepted := map[string]int{}
	nonBoot := 0
	for i, r := range replies {
		act := all[i%len(all)]
		switch {
		case errs[i] != nil:
			t.Fatal(errs[i])
		case r.Status == http.StatusOK:
			accepted[act.event]++
			if act.name != boot.name {
				nonBoot++
			}
		default:
			r.wantError(t, http.StatusBadRequest, "Linode busy.", "")
		}
	}
	if nonBoot != 1 {
		t.Errorf("accepted %d actions but boots, want exactly 1 (accepted: %v)", nonBoot, accepted)
	}
	// Boots were sent once the Linode was busy: one may wait behind the
	// accepted action, the others find a job already waiting.
	if accepted["linode_boot"] != 1 {
		t.Errorf("accepted %d boots, want exactly 1 to wait", accepted["linode_boot"])
	}

	final := waitIdle(t, a, l.Id)
	recorded := map[string]int{}
	for _, e := range linodeEvents(t, a, l.Id, map[string]any{"id": map[string]any{"+gt": created}}) {
		recorded[string(e.Action)]++
		if e.Status != "finished" {
			t.Errorf("event %d %s: got %s, want finished", e.Id, e.Action, e.Status)
		}
	}
	if !maps.Equal(recorded, accepted) {
		t.Errorf("got events %v, want one per accepted action %v", recorded, accepted)
	}
	if final.Status != "running" {
		t.Errorf("got status %s once the jobs ended, want running (boots ran last)", final.Status)
	}
	// Idle again: the next action is accepted.
	shutdown := actions[0]
	if r := shutdown.do(apis[processes-1], l.Id); r.Status != http.StatusOK {
		t.Errorf("shutdown once idle: got %d, want 200; body: %s", r.Status, r.Body)
	}
}

// startProcesses starts n servers on one database at once, stopped when
// the test ends, and returns a client of each acting with token, and the
// last one's target.
func startProcesses(t *testing.T, databaseURL, token string, n int) ([]*api, *target) {
	t.Helper()
	servers := make([]*server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range servers {
		wg.Go(func() { servers[i], errs[i] = startServer(databaseURL) })
	}
	wg.Wait()
	for _, s := range servers {
		if s != nil {
			t.Cleanup(func() {
				if err := s.stop(); err != nil {
					t.Error(err)
				}
			})
		}
	}

	apis := make([]*api, n)
	var tg *target
	for i, s := range servers {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		s.logOnFailure(t)
		tg = &target{name: fmt.Sprint("server", i), url: "http://" + s.addr, owner: token}
		apis[i] = tg.api(t, token)
	}
	return apis, tg
}
