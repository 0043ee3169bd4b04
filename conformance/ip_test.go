package conformance

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/linode/linodego"

	"apiv4/gen"
)

// TestIPs reads a Linode's addresses, sets and resets the reverse DNS of
// its public IPv4 and IPv6 addresses with linodego, and checks the
// events the changes write.
func TestIPs(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		c, _ := tg.linodego(t, tg.owner)
		a := tg.api(t, tg.owner)
		ctx := context.Background()
		since := time.Now().Add(-clockSkew)
		inst, err := c.CreateInstance(ctx, linodego.InstanceCreateOptions{
			Region: "us-east", Type: "g6-nanode-1", Label: newLabel("ips"), PrivateIP: true,
		})
		if err != nil {
			t.Fatalf("CreateInstance: %v", err)
		}
		deleteAtCleanup(t, tg, inst.ID)
		if len(inst.IPv4) != 2 || inst.IPv6 == "" {
			t.Fatalf("got ipv4 %v ipv6 %q, want a public and a private IPv4 and an IPv6", inst.IPv4,
				inst.IPv6)
		}
		v4, private := inst.IPv4[0].String(), inst.IPv4[1].String()
		v6 := strings.TrimSuffix(inst.IPv6, "/128")

		ips, err := c.GetInstanceIPAddresses(ctx, inst.ID)
		if err != nil {
			t.Fatalf("GetInstanceIPAddresses: %v", err)
		}
		pub := ips.IPv4.Public
		if len(pub) != 1 || pub[0].Address != v4 || !pub[0].Public || pub[0].LinodeID != inst.ID ||
			pub[0].Region != "us-east" || pub[0].Type != linodego.IPTypeIPv4 || pub[0].Gateway == "" {
			t.Errorf("got public IPv4 %+v, want %s of Linode %d", pub, v4, inst.ID)
		}
		defaultName := strings.ReplaceAll(v4, ".", "-") + "."
		if len(pub) == 1 && !strings.HasPrefix(pub[0].RDNS, defaultName) {
			t.Errorf("got default rdns %q, want %s<domain>", pub[0].RDNS, defaultName)
		}
		p := ips.IPv4.Private
		if len(p) != 1 || p[0].Address != private || p[0].Public || p[0].RDNS != "" {
			t.Errorf("got private IPv4 %+v, want %s without rdns", p, private)
		}
		if len(ips.IPv4.Shared) != 0 || len(ips.IPv4.Reserved) != 0 || len(ips.IPv6.Global) != 0 {
			t.Errorf("got shared, reserved or global addresses: %+v %+v", ips.IPv4, ips.IPv6)
		}
		slaac, ll := ips.IPv6.SLAAC, ips.IPv6.LinkLocal
		if slaac == nil || slaac.Address != v6 || slaac.Prefix != 64 ||
			slaac.Type != linodego.IPTypeIPv6 {
			t.Errorf("got SLAAC %+v, want %s/64", slaac, v6)
		}
		if ll == nil || !strings.HasPrefix(ll.Address, "fe80::") || ll.Public {
			t.Errorf("got link-local %+v, want a private fe80:: address", ll)
		}

		// One address, however it is spelt.
		spellings := []struct{ name, path, want string }{
			{"IPv4", v4, v4},
			{"IPv6 unescaped", v6, v6},
			{"IPv6 escaped", strings.ReplaceAll(v6, ":", "%3A"), v6},
			{"IPv6 upper case", strings.ToUpper(v6), v6},
		}
		if ll != nil {
			spellings = append(spellings, struct{ name, path, want string }{
				"link-local", url.PathEscape(ll.Address), ll.Address})
		}
		for _, sp := range spellings {
			var ip gen.IPAddress
			a.must(http.StatusOK, "GET", fmt.Sprintf("/linode/instances/%d/ips/%s", inst.ID, sp.path),
				nil).decode(t, &ip)
			if ip.Address != sp.want {
				t.Errorf("%s: got %s, want %s", sp.name, ip.Address, sp.want)
			}
		}
		got, err := c.GetInstanceIPAddress(ctx, inst.ID, v6)
		if err != nil || got.Address != v6 {
			t.Errorf("GetInstanceIPAddress(%s): got %+v, %v", v6, got, err)
		}
		_, err = c.GetInstanceIPAddress(ctx, inst.ID, "192.0.2.254")
		if !linodego.IsNotFound(err) {
			t.Errorf("GetInstanceIPAddress of another address: got %v, want not found", err)
		}

		// Set, reset with null, and leave alone with {}.
		name := "web-" + runID + ".example.org"
		for _, addr := range []string{v4, v6} {
			set, err := c.UpdateInstanceIPAddress(ctx, inst.ID, addr,
				linodego.IPAddressUpdateOptions{RDNS: &name})
			if err != nil || set.RDNS != name {
				t.Fatalf("set rdns of %s: got %+v, %v", addr, set, err)
			}
			unchanged := a.must(http.StatusOK, "PUT",
				fmt.Sprintf("/linode/instances/%d/ips/%s", inst.ID, addr), map[string]any{})
			var ip gen.IPAddress
			unchanged.decode(t, &ip)
			if value(ip.Rdns) != name {
				t.Errorf("{} changed the rdns of %s to %v", addr, ip.Rdns)
			}
			reset, err := c.UpdateInstanceIPAddress(ctx, inst.ID, addr, linodego.IPAddressUpdateOptions{})
			if err != nil {
				t.Fatalf("reset rdns of %s: %v", addr, err)
			}
			if addr == v4 && !strings.HasPrefix(reset.RDNS, defaultName) {
				t.Errorf("reset rdns of %s: got %q, want the default", addr, reset.RDNS)
			}
			if addr == v6 && reset.RDNS != "" {
				t.Errorf("reset rdns of %s: got %q, want none", addr, reset.RDNS)
			}
		}

		bad := "not a hostname"
		_, err = c.UpdateInstanceIPAddress(ctx, inst.ID, v4, linodego.IPAddressUpdateOptions{RDNS: &bad})
		wantAPIError(t, err, http.StatusBadRequest, "[rdns] Domain is not valid.")
		_, err = c.UpdateInstanceIPAddress(ctx, inst.ID, private,
			linodego.IPAddressUpdateOptions{RDNS: &name})
		wantAPIError(t, err, http.StatusBadRequest, "[rdns] Only public addresses have reverse DNS.")

		// Four changes: set and reset on each address; {} and refusals write none.
		var page gen.EventPage
		filter := filterJSON(t, map[string]any{
			"action": "ipaddress_update", "created": map[string]any{"+gte": since.UTC().Format(timeLayout)},
		})
		a.must(http.StatusOK, "GET", "/account/events?page_size=100", nil, "X-Filter", filter).
			decode(t, &page)
		var mine []gen.Event
		for _, e := range page.Data {
			sec, err := e.SecondaryEntity.Get()
			if err == nil && sec.Url == fmt.Sprint("/v4/linode/instances/", inst.ID) {
				mine = append(mine, e)
			}
		}
		if len(mine) != 4 {
			t.Fatalf("got %d ipaddress_update events of Linode %d, want 4", len(mine), inst.ID)
		}
		for _, e := range mine {
			ent, _ := e.Entity.Get()
			if ent.Type != "ipaddress" || !ent.Id.IsNull() || (ent.Label != v4 && ent.Label != v6) ||
				e.Status != "notification" {
				t.Errorf("got event %+v with entity %+v, want a notification about %s or %s",
					e, ent, v4, v6)
			}
		}

		if tg.other != "" {
			other, _ := tg.linodego(t, tg.other)
			if _, err := other.GetInstanceIPAddresses(ctx, inst.ID); !linodego.IsNotFound(err) {
				t.Errorf("another account's GetInstanceIPAddresses: got %v, want not found", err)
			}
		}
	})
}

// timeLayout is how the API writes times, and X-Filter takes them.
const timeLayout = "2006-01-02T15:04:05"
