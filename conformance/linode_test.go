package conformance

import (
	"context"
	"errors"
	"math"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/linode/linodego"

	"apiv4/gen"
)

// TestLinodeLifecycle takes one Linode through every action with
// linodego, waiting the way linodego users do.
func TestLinodeLifecycle(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		c, tr := tg.linodego(t, tg.owner)
		ctx := context.Background()
		timeout := int(jobTimeout / time.Second)
		whole := t
		var inst *linodego.Instance
		label := newLabel("life")

		// power runs an action between NewEventPoller and WaitForFinished
		// and checks the status it leaves the Linode in.
		power := func(t *testing.T, action linodego.EventAction, act func() error,
			want linodego.InstanceStatus) {
			t.Helper()
			p, err := c.NewEventPoller(ctx, inst.ID, linodego.EntityLinode, action)
			if err != nil {
				t.Fatalf("NewEventPoller: %v", err)
			}
			if err := act(); err != nil {
				t.Fatalf("%s: %v", action, err)
			}
			ev, err := p.WaitForFinished(ctx, timeout)
			if err != nil {
				t.Fatalf("WaitForFinished(%s): %v", action, err)
			}
			if ev.Action != action || ev.Status != linodego.EventFinished {
				t.Errorf("got event %s %s, want %s finished", ev.Action, ev.Status, action)
			}
			got, err := c.WaitForInstanceStatus(ctx, inst.ID, want, timeout)
			if err != nil {
				t.Fatalf("WaitForInstanceStatus(%s): %v", want, err)
			}
			inst = got
		}

		steps := []struct {
			name string
			run  func(t *testing.T)
		}{
			{"create", func(t *testing.T) {
				since := time.Now().Add(-clockSkew)
				booted := true
				var err error
				inst, err = c.CreateInstance(ctx, linodego.InstanceCreateOptions{
					Region: "us-east", Type: "g6-nanode-1", Label: label, Image: "linode/debian12",
					RootPass: testPassword, Booted: &booted, Tags: []string{"conformance"},
				})
				if err != nil {
					t.Fatalf("CreateInstance: %v", err)
				}
				deleteAtCleanup(whole, tg, inst.ID)
				if inst.Status != linodego.InstanceProvisioning || inst.Label != label {
					t.Errorf("got %s %s, want %s provisioning", inst.Label, inst.Status, label)
				}
				ev := waitForEventFinished(t, c, inst.ID, linodego.ActionLinodeCreate, since)
				checkFinished(t, ev, "Creating Linode "+label)
				if ev.SecondaryEntity == nil || ev.SecondaryEntity.ID != "linode/debian12" {
					t.Errorf("got secondary entity %+v, want the image linode/debian12", ev.SecondaryEntity)
				}
				inst, err = c.WaitForInstanceStatus(ctx, inst.ID, linodego.InstanceRunning, timeout)
				if err != nil {
					t.Fatalf("WaitForInstanceStatus(running): %v", err)
				}
			}},
			{"shutdown", func(t *testing.T) {
				power(t, linodego.ActionLinodeShutdown,
					func() error { return c.ShutdownInstance(ctx, inst.ID) }, linodego.InstanceOffline)
			}},
			{"reset password while offline", func(t *testing.T) {
				since := time.Now().Add(-clockSkew)
				err := c.ResetInstancePassword(ctx, inst.ID,
					linodego.InstancePasswordResetOptions{RootPass: "an0ther-Pass!"})
				if err != nil {
					t.Fatalf("ResetInstancePassword: %v", err)
				}
				ev := waitForEventFinished(t, c, inst.ID, linodego.ActionPasswordReset, since)
				checkFinished(t, ev, "")
				if got := waitIdle(t, tg.api(t, tg.owner), inst.ID); got.Status != "offline" {
					t.Errorf("got status %s after a password reset, want offline", got.Status)
				}
			}},
			{"boot", func(t *testing.T) {
				power(t, linodego.ActionLinodeBoot,
					func() error { return c.BootInstance(ctx, inst.ID, 0) }, linodego.InstanceRunning)
			}},
			{"reset password while running", func(t *testing.T) {
				err := c.ResetInstancePassword(ctx, inst.ID,
					linodego.InstancePasswordResetOptions{RootPass: "an0ther-Pass!"})
				wantAPIError(t, err, http.StatusBadRequest,
					"Linode must be shut down to reset the root password.")
			}},
			{"reboot into its config", func(t *testing.T) {
				// Every Linode has one configuration profile, with the Linode's id.
				power(t, linodego.ActionLinodeReboot,
					func() error { return c.RebootInstance(ctx, inst.ID, inst.ID) }, linodego.InstanceRunning)
			}},
			{"rebuild", func(t *testing.T) {
				since := time.Now().Add(-clockSkew)
				_, err := c.RebuildInstance(ctx, inst.ID, linodego.InstanceRebuildOptions{
					Image: "linode/ubuntu24.04", RootPass: testPassword, Type: "g6-nosuchplan",
				})
				wantAPIError(t, err, http.StatusBadRequest, "[type] type is not valid")
				got, err := c.RebuildInstance(ctx, inst.ID, linodego.InstanceRebuildOptions{
					Image: "linode/ubuntu24.04", RootPass: testPassword, Type: "g6-standard-1",
				})
				if err != nil {
					t.Fatalf("RebuildInstance: %v", err)
				}
				if got.Status != linodego.InstanceRebuilding || got.Image != "linode/ubuntu24.04" {
					t.Errorf("got %s %s, want rebuilding linode/ubuntu24.04", got.Status, got.Image)
				}
				ev := waitForEventFinished(t, c, inst.ID, linodego.ActionLinodeRebuild, since)
				checkFinished(t, ev, "Rebuilding Linode "+label)
				got, err = c.WaitForInstanceStatus(ctx, inst.ID, linodego.InstanceRunning, timeout)
				if err != nil {
					t.Fatalf("WaitForInstanceStatus(running): %v", err)
				}
				// It moved to the plan it was rebuilt for.
				if got.Type != "g6-standard-1" || got.Specs == nil || got.Specs.Memory != 2048 {
					t.Errorf("after the rebuild: type %s, specs %+v; want g6-standard-1 with 2048 MB",
						got.Type, got.Specs)
				}
			}},
			{"update while a job runs", func(t *testing.T) {
				if err := c.RebootInstance(ctx, inst.ID, 0); err != nil {
					t.Fatalf("RebootInstance: %v", err)
				}
				label = newLabel("life")
				// A tag given twice is kept once.
				tags, sent := []string{"web", "prod"}, []string{"web", "prod", "web"}
				got, err := c.UpdateInstance(ctx, inst.ID, linodego.InstanceUpdateOptions{
					Label: label, Tags: &sent, Alerts: &linodego.InstanceAlert{CPU: 95},
				})
				if err != nil {
					t.Fatalf("UpdateInstance: %v", err)
				}
				if got.Label != label || !slices.Equal(got.Tags, tags) || got.Alerts.CPU != 95 {
					t.Errorf("got label %s tags %v cpu alert %d, want %s %v 95",
						got.Label, got.Tags, got.Alerts.CPU, label, tags)
				}
				if got.Status != linodego.InstanceRebooting && got.Status != linodego.InstanceRunning {
					t.Errorf("got status %s, want the reboot's status kept", got.Status)
				}
				// linodego retries a refused update, so look at what it got.
				for _, x := range tr.exchanges() {
					if x.Op == "updateLinodeInstance" && x.Status != http.StatusOK {
						t.Errorf("an update got %d (%s), want 200 even while busy", x.Status, x.Body)
					}
				}
				updates := linodeEvents(t, tg.api(t, tg.owner), inst.ID,
					map[string]any{"action": "linode_update"})
				if len(updates) != 1 || updates[0].Status != "notification" {
					t.Fatalf("got update events %+v, want one notification", updates)
				}
			}},
			{"wait for resource free", func(t *testing.T) {
				if err := c.WaitForResourceFree(ctx, linodego.EntityLinode, inst.ID, timeout); err != nil {
					t.Fatalf("WaitForResourceFree: %v", err)
				}
				pending := linodeEvents(t, tg.api(t, tg.owner), inst.ID, pendingFilter(inst.ID))
				if len(pending) > 0 {
					t.Errorf("got %d pending events once free, want none", len(pending))
				}
			}},
			{"delete", func(t *testing.T) {
				since := time.Now().Add(-clockSkew)
				if err := c.DeleteInstance(ctx, inst.ID); err != nil {
					t.Fatalf("DeleteInstance: %v", err)
				}
				if _, err := c.GetInstance(ctx, inst.ID); !linodego.IsNotFound(err) {
					t.Errorf("GetInstance after delete: got %v, want not found", err)
				}
				ev := waitForEventFinished(t, c, inst.ID, linodego.ActionLinodeDelete, since)
				checkFinished(t, ev, "Deleting Linode "+label)
			}},
		}
		for _, s := range steps {
			if !t.Run(s.name, s.run) {
				break // later steps need this one
			}
		}
	})
}

// waitLock serialises linodego's WaitForEventFinished, which is not safe
// for concurrent use in v1.69.1: every call writes to one package-level
// title caser (waitfor.go, englishTitle), a data race under -race.
var waitLock sync.Mutex

// waitForEventFinished calls linodego's WaitForEventFinished for an
// action on a Linode and returns the finished event.
func waitForEventFinished(t *testing.T, c *linodego.Client, id int, action linodego.EventAction,
	since time.Time) *linodego.Event {
	t.Helper()
	waitLock.Lock()
	defer waitLock.Unlock()
	ev, err := c.WaitForEventFinished(context.Background(), id, linodego.EntityLinode, action, since,
		int(jobTimeout/time.Second))
	if err != nil {
		t.Fatalf("WaitForEventFinished(%s): %v", action, err)
	}
	return ev
}

// checkFinished checks a finished event of the owner; message is checked
// when not empty.
func checkFinished(t *testing.T, ev *linodego.Event, message string) {
	t.Helper()
	if ev.Status != linodego.EventFinished || ev.PercentComplete != 100 {
		t.Errorf("got event %d %s %d%%, want finished 100%%", ev.ID, ev.Status, ev.PercentComplete)
	}
	if ev.Username != "alice" && local() {
		t.Errorf("got username %q, want alice", ev.Username)
	}
	if message != "" && ev.Message != message {
		t.Errorf("got message %q, want %q", ev.Message, message)
	}
	if ev.Created == nil || time.Since(*ev.Created) > time.Hour+clockSkew {
		t.Errorf("got created %v, want about now", ev.Created)
	}
	// Times are whole seconds on the wire: the span may be off by one.
	start, end := ev.StartTime, ev.CompleteTime
	if ev.Created == nil || start == nil || end == nil || start.Before(*ev.Created) || end.Before(*start) ||
		math.Abs(end.Sub(*start).Seconds()-ev.Duration) > 1 {
		t.Errorf("got created %v, started %v, completed %v, duration %v; want them in order, the span "+
			"the duration", ev.Created, start, end, ev.Duration)
	}
}

// wantAPIError fails the test unless err is a linodego error with the
// status and, when reason is not empty, that message.
func wantAPIError(t *testing.T, err error, status int, reason string) {
	t.Helper()
	var le linodego.Error
	if p := (*linodego.Error)(nil); errors.As(err, &p) {
		le = *p
	} else if !errors.As(err, &le) {
		t.Fatalf("got error %v, want a %d from the API", err, status)
	}
	if le.Code != status {
		t.Errorf("got status %d (%v), want %d", le.Code, le, status)
	}
	if reason != "" && le.Message != reason {
		t.Errorf("got message %q, want %q", le.Message, reason)
	}
}

// TestLinodeCreateErrors checks the 400 answers the spec words for bad
// create requests.
func TestLinodeCreateErrors(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		a := tg.api(t, tg.owner)
		taken := newLinode(t, a, tg, false).Label
		with := func(k string, v any) map[string]any {
			b := createBody(newLabel("bad"), true)
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
			return b
		}
		noCredentials := with("root_pass", nil)

		tests := []struct {
			name          string
			body          map[string]any
			reason, field string
		}{
			{"unknown region", with("region", "xx-nowhere"), "region is not valid", "region"},
			{"unknown type", with("type", "g6-huge-99"), "type is not valid", "type"},
			{"unknown image", with("image", "linode/nosuch"), "image is not valid", "image"},
			{"image without credentials", noCredentials,
				"Must provide valid root_pass, authorized_keys, or authorized_users", ""},
			{"weak password", with("root_pass", "password"),
				"Password does not meet strength requirement", "root_pass"},
			{"two dashes in the label", with("label", "web--01"),
				"Label must not contain two dashes, underscores or periods in a row.", "label"},
			{"taken label", with("label", taken), "Label must be unique among your Linodes.", "label"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := a.in(t).do("POST", "/linode/instances", tt.body)
				r.wantError(t, http.StatusBadRequest, tt.reason, tt.field)
			})
		}
	})
}

// TestLinodeVisibility checks who sees a Linode: its account's users do,
// through linodego's id filter too, and another account gets 404 for it.
func TestLinodeVisibility(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		a := tg.api(t, tg.owner)
		l := newIdleLinode(t, a, tg, true)
		ctx := context.Background()
		byID := &linodego.ListOptions{Filter: filterJSON(t, map[string]any{"id": l.Id})}

		for _, who := range []struct{ name, token string }{{"owner", tg.owner}, {"peer", tg.peer}} {
			t.Run(who.name, func(t *testing.T) {
				if who.token == "" {
					t.Skip("no token for another user of the account (-token-peer)")
				}
				c, _ := tg.linodego(t, who.token)
				list, err := c.ListInstances(ctx, byID)
				if err != nil {
					t.Fatalf("ListInstances: %v", err)
				}
				if len(list) != 1 || list[0].ID != l.Id || list[0].Label != l.Label {
					t.Errorf("got %+v, want only Linode %d", list, l.Id)
				}
			})
		}

		t.Run("other account", func(t *testing.T) {
			if tg.other == "" {
				t.Skip("no token of another account (-token2)")
			}
			c, _ := tg.linodego(t, tg.other)
			create := linodeEvents(t, a.in(t), l.Id, map[string]any{"action": "linode_create"})
			if len(create) != 1 {
				t.Fatalf("got %d create events, want 1", len(create))
			}
			calls := []struct {
				name string
				call func() error
			}{
				{"GetInstance", func() error { _, err := c.GetInstance(ctx, l.Id); return err }},
				{"UpdateInstance", func() error {
					_, err := c.UpdateInstance(ctx, l.Id, linodego.InstanceUpdateOptions{Label: newLabel("x")})
					return err
				}},
				{"ShutdownInstance", func() error { return c.ShutdownInstance(ctx, l.Id) }},
				{"DeleteInstance", func() error { return c.DeleteInstance(ctx, l.Id) }},
				{"GetEvent", func() error { _, err := c.GetEvent(ctx, create[0].Id); return err }},
				{"MarkEventsSeen", func() error {
					return c.MarkEventsSeen(ctx, &linodego.Event{ID: create[0].Id})
				}},
				{"MarkEventRead", func() error {
					return c.MarkEventRead(ctx, &linodego.Event{ID: create[0].Id})
				}},
			}
			for _, tt := range calls {
				if err := tt.call(); !linodego.IsNotFound(err) {
					t.Errorf("%s: got %v, want not found", tt.name, err)
				}
			}
			list, err := c.ListInstances(ctx, byID)
			if err != nil || len(list) != 0 {
				t.Errorf("ListInstances: got %d Linodes, %v; want none", len(list), err)
			}
			events, err := c.ListEvents(ctx, &linodego.ListOptions{
				Filter: filterJSON(t, map[string]any{"entity.id": l.Id, "entity.type": "linode"}),
			})
			if err != nil || len(events) != 0 {
				t.Errorf("ListEvents: got %d events, %v; want none", len(events), err)
			}
		})
	})
}

// TestGeneratedClient drives a Linode without an image through the
// client generated from the spec, whose typed answers must decode.
func TestGeneratedClient(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		c := tg.genClient(t, tg.owner)
		ctx := context.Background()
		label := newLabel("gen")
		created, err := c.CreateLinodeInstanceWithResponse(ctx, gen.LinodeCreateRequest{
			Region: "us-west", Type: "g6-standard-1", Label: &label,
		})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if created.JSON200 == nil {
			t.Fatalf("create: got %v; want a Linode", created.Status())
		}
		l := *created.JSON200
		deleteAtCleanup(t, tg, l.Id)
		if l.Label != label || l.Status != "provisioning" || !l.Image.IsNull() {
			t.Errorf("got %s %s image %v, want %s provisioning without an image",
				l.Label, l.Status, l.Image, label)
		}

		// A Linode without an image has nothing to boot: it ends offline.
		if got := waitIdle(t, tg.api(t, tg.owner), l.Id); got.Status != "offline" {
			t.Errorf("got status %s, want offline", got.Status)
		}
		filter, pageSize := filterJSON(t, map[string]any{"entity.type": "linode", "entity.id": l.Id}), 25
		events, err := c.ListEventsWithResponse(ctx,
			&gen.ListEventsParams{PageSize: &pageSize, XFilter: &filter})
		if err != nil {
			t.Fatalf("list events: %v", err)
		}
		if events.JSON200 == nil || len(events.JSON200.Data) != 1 {
			t.Fatalf("list events: got %v; want one event", events.Status())
		}
		if ev := events.JSON200.Data[0]; ev.Action != "linode_create" || !ev.SecondaryEntity.IsNull() {
			t.Errorf("got %s with secondary entity %v, want linode_create without one",
				ev.Action, ev.SecondaryEntity)
		}

		missing, err := c.GetLinodeInstanceWithResponse(ctx, unknownID)
		if err != nil {
			t.Errorf("get an unknown Linode: %v", err)
		} else if missing.JSON404 == nil || missing.JSON404.Errors[0].Reason != "Not found" {
			t.Errorf("get an unknown Linode: got %v; want 404 Not found", missing.Status())
		}
		bad := `{"foo":"bar"}`
		list, err := c.ListLinodeInstancesWithResponse(ctx,
			&gen.ListLinodeInstancesParams{XFilter: &bad})
		if err != nil {
			t.Errorf("bad filter: %v", err)
		} else if list.JSON400 == nil || list.JSON400.Errors[0].Reason != "Cannot filter on foo" {
			t.Errorf("bad filter: got %v; want 400 Cannot filter on foo", list.Status())
		}
	})
}
