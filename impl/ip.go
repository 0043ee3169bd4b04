package impl

import (
	"context"

	"github.com/oapi-codegen/nullable"

	"apiv4/db"
	"apiv4/gen"
)

// GetLinodeIPs returns every address of one of the caller's Linodes.
func (s *Server) GetLinodeIPs(ctx context.Context,
	req gen.GetLinodeIPsRequestObject) (gen.GetLinodeIPsResponseObject, error) {
	ips, err := s.store.ListLinodeIPs(ctx, principal(ctx), int64(req.LinodeId))
	if err != nil {
		return nil, err
	}
	out := gen.LinodeIPs{
		Ipv4: gen.LinodeIPv4{
			Public: []gen.IPAddress{}, Private: []gen.IPAddress{}, Shared: []gen.IPAddress{},
			Reserved: []gen.IPAddress{}, Vpc: []gen.VPCIP{},
		},
		Ipv6: gen.LinodeIPv6{
			Slaac:     nullable.NewNullNullable[gen.IPAddress](),
			LinkLocal: nullable.NewNullNullable[gen.IPAddress](),
			Global:    []gen.IPv6Range{}, Vpc: []gen.VPCIP{},
		},
	}
	for i := range ips {
		ip := &ips[i]
		switch {
		case ip.Family == "ipv6":
			out.Ipv6.Slaac = nullable.NewNullableWithValue(ipOut(ip))
			if ll := ip.LinkLocal(); ll != nil {
				out.Ipv6.LinkLocal = nullable.NewNullableWithValue(ipOut(ll))
			}
		case ip.Public:
			out.Ipv4.Public = append(out.Ipv4.Public, ipOut(ip))
		default:
			out.Ipv4.Private = append(out.Ipv4.Private, ipOut(ip))
		}
	}
	return gen.GetLinodeIPs200JSONResponse(out), nil
}

// GetLinodeIP returns one address of one of the caller's Linodes.
func (s *Server) GetLinodeIP(ctx context.Context,
	req gen.GetLinodeIPRequestObject) (gen.GetLinodeIPResponseObject, error) {
	ip, err := s.store.GetLinodeIP(ctx, principal(ctx), int64(req.LinodeId), req.Address)
	if err != nil {
		return nil, err
	}
	return gen.GetLinodeIP200JSONResponse(ipOut(ip)), nil
}

// UpdateLinodeIP sets or resets an address's reverse DNS. A body without
// rdns changes nothing; null resets it.
func (s *Server) UpdateLinodeIP(ctx context.Context,
	req gen.UpdateLinodeIPRequestObject) (gen.UpdateLinodeIPResponseObject, error) {
	p, linodeID := principal(ctx), int64(req.LinodeId)
	if req.Body == nil || !req.Body.Rdns.IsSpecified() {
		ip, err := s.store.GetLinodeIP(ctx, p, linodeID, req.Address)
		if err != nil {
			return nil, err
		}
		return gen.UpdateLinodeIP200JSONResponse(ipOut(ip)), nil
	}

	var name *string
	if !req.Body.Rdns.IsNull() {
		v := req.Body.Rdns.MustGet()
		if !db.IsHostname(v) {
			return nil, db.Errorf(db.Invalid, "rdns", "Domain is not valid.")
		}
		name = &v
	}
	ip, err := s.store.SetRDNS(ctx, p, linodeID, req.Address, name)
	if err != nil {
		return nil, err
	}
	return gen.UpdateLinodeIP200JSONResponse(ipOut(ip)), nil
}

// ipOut is the wire form of an address.
func ipOut(ip *db.IPAddress) gen.IPAddress {
	return gen.IPAddress{
		Address: ip.Address, Gateway: nullableOf(ip.Gateway), SubnetMask: ip.SubnetMask(),
		Prefix: ip.Prefix, Type: gen.IPAddressType(ip.Family), Public: ip.Public,
		Rdns: nullableOf(ip.RDNS), LinodeId: int(ip.LinodeID), Region: ip.Region,
		VpcNat11:    nullable.NewNullNullable[gen.IPNAT1To1](),
		InterfaceId: nullable.NewNullNullable[int](),
	}
}
