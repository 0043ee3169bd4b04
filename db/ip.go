package db

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/big"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/uptrace/bun"
)

// IPAddress is an address given to a Linode. A Linode's IPv6 link-local
// address is not stored: it follows from its SLAAC address (LinkLocal).
type IPAddress struct {
	bun.BaseModel `bun:"table:ips,alias:ip"`

	AccountID int64   `bun:"account_id"`
	Address   string  `bun:"address,pk"` // canonical, as netip.Addr.String writes it
	LinodeID  int64   `bun:"linode_id"`
	Family    string  `bun:"family"` // ipv4 or ipv6
	Public    bool    `bun:"public"`
	Prefix    int     `bun:"prefix"`
	Gateway   *string `bun:"gateway"`
	Region    string  `bun:"region"`
	RDNS      *string `bun:"rdns"` // what a reverse lookup answers; nil for none
	Created   int64   `bun:"created"`
}

// SubnetMask returns the address's subnet mask in the address's own notation.
func (ip *IPAddress) SubnetMask() string {
	bits := 32
	if ip.Family == "ipv6" {
		bits = 128
	}
	mask := new(big.Int).Lsh(big.NewInt(1), uint(bits))
	mask.Sub(mask, new(big.Int).Lsh(big.NewInt(1), uint(bits-ip.Prefix)))
	b := make([]byte, bits/8)
	mask.FillBytes(b)
	a, _ := netip.AddrFromSlice(b)
	return a.String()
}

// LinkLocal returns the link-local address that goes with a SLAAC address:
// fe80::/64 with the same interface identifier. It returns nil for any
// other address.
func (ip *IPAddress) LinkLocal() *IPAddress {
	a, err := netip.ParseAddr(ip.Address)
	if err != nil || ip.Family != "ipv6" || !ip.Public {
		return nil
	}
	b := a.As16()
	copy(b[:8], []byte{0xfe, 0x80, 0, 0, 0, 0, 0, 0})
	gw := "fe80::1"
	return &IPAddress{
		AccountID: ip.AccountID, Address: netip.AddrFrom16(b).String(), LinodeID: ip.LinodeID,
		Family: "ipv6", Prefix: 64, Gateway: &gw, Region: ip.Region, Created: ip.Created,
	}
}

// IsHostname reports whether s is a fully qualified host name: at most 253
// characters, at least two dot-separated labels of 1 to 63 letters, digits
// and inner hyphens, and a last label that is not all digits.
func IsHostname(s string) bool {
	labels := strings.Split(s, ".")
	if len(s) > 253 || len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}

// defaultRDNS is the reverse DNS name a public IPv4 address has until its
// owner sets another, and again after a reset. Other addresses have none.
func (s *Store) defaultRDNS(ip *IPAddress) *string {
	if ip.Family != "ipv4" || !ip.Public {
		return nil
	}
	name := strings.ReplaceAll(ip.Address, ".", "-") + "." + s.cfg.RDNSDomain
	return &name
}

// linodeIPs returns the stored addresses of the given Linodes, public ones
// first, by Linode id.
func linodeIPs(ctx context.Context, db bun.IDB, accountID int64, ids ...int64) (
	map[int64][]IPAddress, error) {
	out := map[int64][]IPAddress{}
	if len(ids) == 0 {
		return out, nil
	}
	var ips []IPAddress
	if err := linodeIPsQuery(db, &ips, accountID, ids...).Scan(ctx); err != nil {
		return nil, err
	}
	for _, ip := range ips {
		out[ip.LinodeID] = append(out[ip.LinodeID], ip)
	}
	return out, nil
}

// linodeIPsQuery reads the addresses of some of an account's Linodes.
func linodeIPsQuery(db bun.IDB, ips *[]IPAddress, accountID int64, ids ...int64) *bun.SelectQuery {
	return db.NewSelect().Model(ips).
		Where("ip.account_id = ? AND ip.linode_id IN (?)", accountID, bun.In(ids)).
		OrderExpr("ip.linode_id, ip.family, ip.public DESC, ip.created, ip.address")
}

// withIPs fills the IPs of the given Linodes.
func withIPs(ctx context.Context, db bun.IDB, accountID int64, ls ...*Linode) error {
	ids := make([]int64, len(ls))
	for i, l := range ls {
		ids[i] = l.ID
	}
	byLinode, err := linodeIPs(ctx, db, accountID, ids...)
	if err != nil {
		return err
	}
	for _, l := range ls {
		l.IPs = byLinode[l.ID]
	}
	return nil
}

// ListLinodeIPs returns every stored address of one of the caller's
// Linodes, public ones first, or ErrNotFound.
func (s *Store) ListLinodeIPs(ctx context.Context, p *Principal, linodeID int64) (
	[]IPAddress, error) {
	l, err := s.GetLinode(ctx, p, linodeID)
	if err != nil {
		return nil, err
	}
	return l.IPs, nil
}

// GetLinodeIP returns one address of one of the caller's Linodes, its
// link-local address included. An address that is not the Linode's, or
// not an address at all, is ErrNotFound.
func (s *Store) GetLinodeIP(ctx context.Context, p *Principal, linodeID int64, address string) (
	*IPAddress, error) {
	l, err := s.GetLinode(ctx, p, linodeID)
	if err != nil {
		return nil, err
	}
	return findIP(l, address)
}

// findIP finds an address, in any spelling, among a Linode's.
func findIP(l *Linode, address string) (*IPAddress, error) {
	a, err := netip.ParseAddr(address)
	if err != nil || a.Zone() != "" {
		return nil, ErrNotFound
	}
	want := a.String()
	for i := range l.IPs {
		if l.IPs[i].Address == want {
			return &l.IPs[i], nil
		}
		if ll := l.IPs[i].LinkLocal(); ll != nil && ll.Address == want {
			return ll, nil
		}
	}
	return nil, ErrNotFound
}

// SetRDNS sets the reverse DNS name of one of the caller's public
// addresses, or resets it to the default when name is nil, and writes an
// ipaddress_update event. The caller has checked that name is a host name.
// A private or link-local address is Invalid; an unknown one ErrNotFound.
func (s *Store) SetRDNS(ctx context.Context, p *Principal, linodeID int64, address string,
	name *string) (*IPAddress, error) {
	var ip *IPAddress
	err := s.tx(ctx, func(tx bun.Tx) error {
		var l Linode
		err := tx.NewSelect().Model(&l).
			Where("l.account_id = ? AND l.id = ? AND NOT l.deleted", p.AccountID, linodeID).
			Scan(ctx)
		if err != nil {
			return err
		}
		if err := withIPs(ctx, tx, p.AccountID, &l); err != nil {
			return err
		}
		if ip, err = findIP(&l, address); err != nil {
			return err
		}
		if !ip.Public {
			return Errorf(Invalid, "rdns", "Only public addresses have reverse DNS.")
		}

		ip.RDNS = s.defaultRDNS(ip)
		if name != nil {
			lower := strings.ToLower(*name)
			ip.RDNS = &lower
		}
		_, err = tx.NewUpdate().Model(ip).Column("rdns").
			Where("account_id = ? AND address = ?", ip.AccountID, ip.Address).Exec(ctx)
		if err != nil {
			return err
		}
		return insertEvent(ctx, tx, ipEvent(p, &l, ip, micros(s.now())))
	})
	if err != nil {
		return nil, err
	}
	return ip, nil
}

// ipEvent is the notification of a change to an address: its entity is the
// address, which has no id, and its secondary entity the Linode.
func ipEvent(p *Principal, l *Linode, ip *IPAddress, now int64) *Event {
	e := linodeEvent(p, l, "ipaddress_update", "notification", &Entity{
		ID: l.ID, Label: l.Label, Type: "linode", URL: fmt.Sprintf("/v4/linode/instances/%d", l.ID),
	}, now)
	typ := "ipaddress"
	label := ip.Address
	u := fmt.Sprintf("/v4/linode/instances/%d/ips/%s", l.ID, url.PathEscape(ip.Address))
	msg := "Updated the reverse DNS of " + ip.Address
	e.EntityType, e.EntityID, e.EntityLabel, e.EntityURL, e.Message = &typ, nil, &label, &u, &msg
	return e
}

// addIPs allocates a new Linode's addresses: a public IPv4 address, a
// private one when asked, and an IPv6 SLAAC address.
func (s *Store) addIPs(ctx context.Context, tx bun.Tx, l *Linode, private bool) error {
	kinds := []string{poolPublicIPv4, poolIPv6}
	if private {
		kinds = []string{poolPublicIPv4, poolPrivateIPv4, poolIPv6}
	}
	for _, kind := range kinds {
		ip, err := s.allocate(ctx, tx, l, kind, kind != poolPrivateIPv4)
		if err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(ip).Exec(ctx); err != nil {
			return err
		}
		l.IPs = append(l.IPs, *ip)
	}
	return nil
}

// poolKinds name the rows of ip_pools.
const (
	poolPublicIPv4  = "ipv4_public"
	poolPrivateIPv4 = "ipv4_private"
	poolIPv6        = "ipv6"
)

// poolNames say what each pool holds, as a user reads it.
var poolNames = map[string]string{
	poolPublicIPv4: "public IPv4", poolPrivateIPv4: "private IPv4", poolIPv6: "IPv6",
}

// allocate gives the Linode a free address from a pool. It takes the pool's
// row in ip_pools first, which serialises the allocators of that pool in
// every process until the transaction ends, then probes candidates from the
// pool's next offset on, wrapping around, so freed addresses come back into
// use once the pool has gone round. A full pool is an internal error: the
// operator must widen it.
//
// NOTE: one pool serves every region; the public API has one per region.
func (s *Store) allocate(ctx context.Context, tx bun.Tx, l *Linode, kind string, public bool) (
	*IPAddress, error) {
	pool := map[string]netip.Prefix{
		poolPublicIPv4: s.cfg.PublicIPv4, poolPrivateIPv4: s.cfg.PrivateIPv4, poolIPv6: s.cfg.IPv6,
	}[kind]
	_, err := tx.NewRaw("INSERT INTO ip_pools (kind, pool, next) VALUES (?, ?, 0) "+
		"ON CONFLICT (kind) DO NOTHING", kind, pool.String()).Exec(ctx)
	if err != nil {
		return nil, err
	}
	var next int64
	err = tx.NewRaw(`UPDATE ip_pools
SET next = CASE WHEN pool = ? THEN next ELSE 0 END, pool = ?
WHERE kind = ?
RETURNING next`, pool.String(), pool.String(), kind).Scan(ctx, &next)
	if err != nil {
		return nil, err
	}

	hosts := poolHosts(pool)
	const batch = 16
	for tried := int64(0); tried < hosts; tried += batch {
		var candidates []string
		for i := int64(0); i < batch && tried+i < hosts; i++ {
			candidates = append(candidates, poolAddr(pool, (next+tried+i)%hosts).String())
		}
		var taken []string
		err := tx.NewSelect().Table("ips").Column("address").
			Where("address IN (?)", bun.In(candidates)).Scan(ctx, &taken)
		if err != nil {
			return nil, err
		}
		for i, c := range candidates {
			if slices.Contains(taken, c) {
				continue
			}
			_, err := tx.NewRaw("UPDATE ip_pools SET next = ? WHERE kind = ?",
				(next+tried+int64(i)+1)%hosts, kind).Exec(ctx)
			if err != nil {
				return nil, err
			}
			return s.newIP(l, c, pool, public), nil
		}
	}
	// Not a fault: the operator's pool is too small for the Linodes it
	// holds. Addresses come back when a Linode's deletion ends.
	return nil, Errorf(Invalid, "", "No %s address is free: the address pool %s is exhausted. "+
		"Try again once a Linode has been deleted.", poolNames[kind], pool)
}

// newIP describes a freshly allocated address of the Linode.
func (s *Store) newIP(l *Linode, address string, pool netip.Prefix, public bool) *IPAddress {
	ip := &IPAddress{
		AccountID: l.AccountID, Address: address, LinodeID: l.ID, Family: "ipv4",
		Public: public, Prefix: pool.Bits(), Region: l.Region, Created: l.Created,
	}
	switch {
	case pool.Addr().Is6():
		gw := "fe80::1"
		ip.Family, ip.Prefix, ip.Gateway = "ipv6", 64, &gw
	case public:
		gw := pool.Addr().Next().String()
		ip.Gateway = &gw
	}
	ip.RDNS = s.defaultRDNS(ip)
	return ip
}

// eui64 is where the interface ids of IPv6 addresses start: the EUI-64
// form of MAC addresses f2:3c:91:00:00:00 and up, as a hypervisor gives
// them. The last 24 bits count Linodes.
const eui64 = 0xf03c_91ff_fe00_0000

// poolHosts is how many addresses a pool hands out: an IPv4 pool keeps its
// network, gateway and broadcast addresses; an IPv6 pool hands out 2^24-1
// EUI-64 interface ids in its first /64.
func poolHosts(p netip.Prefix) int64 {
	if p.Addr().Is4() {
		return int64(1)<<(32-p.Bits()) - 3
	}
	return 1<<24 - 1
}

// poolAddr is the address at an offset among the pool's hosts.
func poolAddr(p netip.Prefix, offset int64) netip.Addr {
	if p.Addr().Is4() {
		b := p.Addr().As4()
		n := binary.BigEndian.Uint32(b[:]) + uint32(offset) + 2
		return netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, n)))
	}
	b := p.Addr().As16()
	binary.BigEndian.PutUint64(b[8:], eui64+uint64(offset)+1)
	return netip.AddrFrom16(b)
}
