package db_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"apiv4/db"
	"apiv4/db/dbtest"
)

// withPools returns the default config with the given IPv4 pools.
func withPools(public, private string) db.Config {
	c := db.DefaultConfig()
	c.PublicIPv4 = netip.MustParsePrefix(public)
	c.PrivateIPv4 = netip.MustParsePrefix(private)
	return c
}

func TestLinodeAddresses(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		if err := s.SetConfig(withPools("203.0.113.0/24", "192.168.128.0/17")); err != nil {
			t.Fatal(err)
		}
		p := mustPrincipal(t, s, "acme", "alice")
		l, err := s.CreateLinode(ctx, p, db.NewLinode{Region: "eu-west", Type: "g6-nanode-1", PrivateIP: true})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.GetLinode(ctx, p, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantV4 := []string{"203.0.113.2", "192.168.128.2"}
		if fmt.Sprint(got.IPv4()) != fmt.Sprint(wantV4) {
			t.Errorf("IPv4() = %v, want %v (public first)", got.IPv4(), wantV4)
		}
		if v6 := got.IPv6(); v6 == nil || *v6 != "2001:db8::f03c:91ff:fe00:1/128" {
			t.Errorf("IPv6() = %v, want 2001:db8::f03c:91ff:fe00:1/128", v6)
		}

		tests := []struct {
			name, address, want, mask, rdns string
			prefix                          int
			public                          bool
		}{
			{"public v4", "203.0.113.2", "203.0.113.2", "255.255.255.0",
				"203-0-113-2.ip.apiv4.example", 24, true},
			{"private v4", "192.168.128.2", "192.168.128.2", "255.255.128.0", "", 17, false},
			{"slaac", "2001:db8::f03c:91ff:fe00:1", "2001:db8::f03c:91ff:fe00:1",
				"ffff:ffff:ffff:ffff::", "", 64, true},
			{"slaac spelt long", "2001:0DB8:0:0:F03C:91FF:FE00:0001", "2001:db8::f03c:91ff:fe00:1",
				"ffff:ffff:ffff:ffff::", "", 64, true},
			{"link-local", "fe80::f03c:91ff:fe00:1", "fe80::f03c:91ff:fe00:1",
				"ffff:ffff:ffff:ffff::", "", 64, false},
		}
		for _, tt := range tests {
			ip, err := s.GetLinodeIP(ctx, p, l.ID, tt.address)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			rdns := ""
			if ip.RDNS != nil {
				rdns = *ip.RDNS
			}
			if ip.Address != tt.want || ip.SubnetMask() != tt.mask || ip.Prefix != tt.prefix ||
				ip.Public != tt.public || rdns != tt.rdns || ip.Region != "eu-west" || ip.LinodeID != l.ID {
				t.Errorf("%s: got %+v mask %s", tt.name, ip, ip.SubnetMask())
			}
		}

		other := mustPrincipal(t, s, "other", "bob")
		missing := []struct {
			name string
			p    *db.Principal
			addr string
		}{
			{"another account", other, "203.0.113.2"},
			{"not its address", p, "203.0.113.3"},
			{"not an address", p, "example.org"},
			{"zoned", p, "fe80::f03c:91ff:fe00:1%eth0"},
		}
		for _, tt := range missing {
			if _, err := s.GetLinodeIP(ctx, tt.p, l.ID, tt.addr); !errors.Is(err, db.ErrNotFound) {
				t.Errorf("%s: err = %v, want ErrNotFound", tt.name, err)
			}
		}
	})
}

func TestAddressesAreFreedAndReused(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		// A /29 hands out five addresses: .2 to .6.
		if err := s.SetConfig(withPools("198.51.100.0/29", "192.168.128.0/17")); err != nil {
			t.Fatal(err)
		}
		p := mustPrincipal(t, s, "acme", "alice")
		var ls []*db.Linode
		for range 5 {
			ls = append(ls, mustLinode(t, s, p))
		}
		for i, l := range ls {
			if want := fmt.Sprintf("198.51.100.%d", i+2); l.IPv4()[0] != want {
				t.Errorf("linode %d got %s, want %s", i, l.IPv4()[0], want)
			}
		}
		_, err := s.CreateLinode(ctx, p, db.NewLinode{Region: "us-east", Type: "g6-nanode-1"})
		mustReason(t, "a sixth Linode", err, db.Invalid, "No public IPv4 address is free: the address pool "+
			"198.51.100.0/29 is exhausted. Try again once a Linode has been deleted.")
		if page, err := s.ListLinodes(ctx, p, db.ListQuery{Page: 1, PageSize: 25}); err != nil ||
			page.Results != 5 {
			t.Fatalf("after the refusal: %+v, %v; want the 5 Linodes only", page, err)
		}

		drain(t, s)
		if _, _, err := s.Act(ctx, p, ls[2].ID, db.Action{Name: "linode_delete"}); err != nil {
			t.Fatal(err)
		}
		// Deleting is not done until its job is: the address stays taken.
		if _, err := s.CreateLinode(ctx, p, db.NewLinode{Region: "us-east", Type: "g6-nanode-1"}); err == nil {
			t.Fatal("an address was reused before its Linode was gone")
		}
		drain(t, s)
		l := mustLinode(t, s, p)
		if l.IPv4()[0] != "198.51.100.4" {
			t.Errorf("new Linode got %v, want the freed 198.51.100.4", l.IPv4())
		}
	})
}

// TestConcurrentAllocation creates Linodes at once in several accounts
// and, on PostgreSQL, through several stores as separate processes would:
// no address is handed out twice.
func TestConcurrentAllocation(t *testing.T) {
	for kind, url := range dbtest.URLs(t) {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			processes := 1
			if kind == "postgres" {
				processes = 3
			}
			var stores []*db.Store
			for range processes {
				s, err := db.Open(ctx, url)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				if err := s.SetConfig(withPools("198.51.100.0/24", "192.168.128.0/17")); err != nil {
					t.Fatal(err)
				}
				stores = append(stores, s)
			}

			const perWorker = 8
			var mu sync.Mutex
			seen := map[string]int64{}
			var wg sync.WaitGroup
			for w := range 6 {
				s := stores[w%len(stores)]
				p := mustPrincipal(t, s, fmt.Sprintf("acct%d", w), fmt.Sprintf("user%d", w))
				wg.Go(func() {
					for range perWorker {
						l, err := s.CreateLinode(ctx, p, db.NewLinode{
							Region: "us-east", Type: "g6-nanode-1", PrivateIP: true,
						})
						if err != nil {
							t.Errorf("create: %v", err)
							return
						}
						mu.Lock()
						for _, ip := range l.IPs {
							if prev, dup := seen[ip.Address]; dup {
								t.Errorf("%s given to Linodes %d and %d", ip.Address, prev, l.ID)
							}
							seen[ip.Address] = l.ID
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if want := 6 * perWorker * 3; len(seen) != want {
				t.Errorf("%d distinct addresses, want %d", len(seen), want)
			}
		})
	}
}

func TestSetRDNS(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		p := mustPrincipal(t, s, "acme", "alice")
		l, err := s.CreateLinode(ctx, p, db.NewLinode{Region: "us-east", Type: "g6-nanode-1", PrivateIP: true})
		if err != nil {
			t.Fatal(err)
		}
		v4, private := l.IPv4()[0], l.IPv4()[1]
		v6 := strings.TrimSuffix(*l.IPv6(), "/128")
		name := "Host.Example.org"

		ip, err := s.SetRDNS(ctx, p, l.ID, v4, &name)
		if err != nil || ip.RDNS == nil || *ip.RDNS != "host.example.org" {
			t.Fatalf("set = %+v, %v; want host.example.org", ip, err)
		}
		page, err := s.ListEvents(ctx, p, db.ListQuery{Page: 1, PageSize: 25,
			Filter: `{"action": "ipaddress_update"}`})
		if err != nil || len(page.Events) != 1 {
			t.Fatalf("ipaddress_update events = %v, %v; want one", page, err)
		}
		e := page.Events[0]
		sec := e.Secondary()
		if *e.EntityType != "ipaddress" || e.EntityID != nil || *e.EntityLabel != v4 ||
			*e.EntityURL != fmt.Sprintf("/v4/linode/instances/%d/ips/%s", l.ID, v4) ||
			e.Status != "notification" || sec == nil || sec.Type != "linode" || sec.ID != l.ID {
			t.Errorf("event = %+v, secondary %+v", e, sec)
		}

		ip, err = s.SetRDNS(ctx, p, l.ID, v4, nil)
		want := strings.ReplaceAll(v4, ".", "-") + ".ip.apiv4.example"
		if err != nil || ip.RDNS == nil || *ip.RDNS != want {
			t.Fatalf("reset = %+v, %v; want %s", ip, err, want)
		}
		if ip, err = s.GetLinodeIP(ctx, p, l.ID, v4); err != nil || *ip.RDNS != want {
			t.Fatalf("after reset GET = %+v, %v", ip, err)
		}

		if ip, err = s.SetRDNS(ctx, p, l.ID, v6, &name); err != nil || *ip.RDNS != "host.example.org" {
			t.Fatalf("set IPv6 = %+v, %v", ip, err)
		}
		if ip, err = s.SetRDNS(ctx, p, l.ID, v6, nil); err != nil || ip.RDNS != nil {
			t.Fatalf("reset IPv6 = %+v, %v; want no name", ip, err)
		}

		linkLocal := "fe80::" + strings.SplitN(v6, "::", 2)[1]
		for _, addr := range []string{private, linkLocal} {
			_, err := s.SetRDNS(ctx, p, l.ID, addr, &name)
			var e *db.Error
			if !errors.As(err, &e) || e.Code != db.Invalid || e.Field != "rdns" {
				t.Errorf("set on %s: err = %v, want Invalid on rdns", addr, err)
			}
		}
		other := mustPrincipal(t, s, "other", "bob")
		if _, err := s.SetRDNS(ctx, other, l.ID, v4, &name); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("set by another account: err = %v, want ErrNotFound", err)
		}
		page, _ = s.ListEvents(ctx, p, db.ListQuery{Page: 1, PageSize: 25,
			Filter: `{"action": "ipaddress_update"}`})
		if page.Results != 4 {
			t.Errorf("%d ipaddress_update events, want 4 (refusals write none)", page.Results)
		}
	})
}

func TestIsHostname(t *testing.T) {
	tests := map[string]bool{
		"host.example.org": true, "a.b": true, "xn--bcher-kva.example": true,
		"localhost": false, "": false, "host..example.org": false, "-host.example.org": false,
		"host-.example.org": false, "host.example.123": false, "host name.example.org": false,
		"host_name.example.org": false, "host.example.org.": false,
		strings.Repeat("a", 64) + ".example":      false,
		strings.Repeat("abcdefghi.", 25) + "org":  true,
		strings.Repeat("abcdefghi.", 25) + "orgs": false,
	}
	for name, want := range tests {
		if got := db.IsHostname(name); got != want {
			t.Errorf("IsHostname(%q) = %t, want %t", name, got, want)
		}
	}
}
