package lantel

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/coredhcp/coredhcp/handler"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/dhcpconf"
	"github.com/lantel/lantel/internal/logx"
	"github.com/lantel/lantel/internal/phones"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
)

// The lantel plugin's DHCPv6 side (server6): stateful IA_NA addresses
// (RFC 8415) from the dhcp6 section's subnets, each REPLY that grants one
// written with the client's number by one call to the service.
// SOLICIT gets an ADVERTISE (nothing written) or, with rapid commit on the
// subnet and asked by the client, the REPLY; REQUEST, RENEW and REBIND get
// a REPLY with the addresses granted; RELEASE and DECLINE end them;
// CONFIRM says whether the addresses are on the link; INFORMATION-REQUEST
// gets the options. A relayed request (RELAY-FORW, one or more hops) is
// placed by the link address or interface-id of the relay nearest the
// client, and that relay's client link-layer address (RFC 6939) gives the
// client's MAC when its DUID does not.

// Service6 is what the plugin's DHCPv6 side needs of the service.
type Service6 interface {
	HasDHCP6() bool
	InRange6(a netip.Addr) bool
	LeaseTime6() time.Duration
	Offer6(c leases.Client6, hint netip.Addr, within func(netip.Addr) bool) (netip.Addr, error)
	Offered6(key string) (netip.Addr, bool)
	Ack6(r service.AckRequest6) (service.Ack6, error)
	Release6(c leases.Client6, a netip.Addr) (bool, error)
	Decline6(c leases.Client6, a netip.Addr) (bool, error)
	NumberFor(mac domain.MAC) string
}

var _ Service6 = (*service.Service)(nil)

// Env6 is what the DHCPv6 side needs from lanteld.
type Env6 struct {
	Svc     Service6
	Policy  func() Policy // the numbering policy (auto-numbering by vendor class)
	Log     *slog.Logger
	Observe func(msg string, outcome string, d time.Duration)
	DHCP    *dhcpconf.Policy6 // the dhcp6 section (subnets required)
}

// Args6 are the DHCPv6 plugin's arguments (server6: `lantel: lease=1h`).
type Args6 struct {
	LeaseTime   time.Duration
	OfferHold   time.Duration
	Quarantine  time.Duration
	MaxDeclines int
}

// ParseArgs6 parses `[lease=DUR] [offer_hold=DUR] [quarantine=DUR]
// [max_declines=N]`; the ranges are the dhcp6 section's.
func ParseArgs6(args []string) (Args6, error) {
	a := Args6{LeaseTime: time.Hour, OfferHold: 30 * time.Second, Quarantine: 10 * time.Minute, MaxDeclines: 3}
	for _, arg := range args {
		k, v, isKV := strings.Cut(arg, "=")
		if !isKV {
			return Args6{}, fmt.Errorf("%w: %q: the DHCPv6 ranges are given in dhcp6.subnets", ErrArgs, arg)
		}
		var dst *time.Duration
		switch k {
		case "lease":
			dst = &a.LeaseTime
		case "offer_hold":
			dst = &a.OfferHold
		case "quarantine":
			dst = &a.Quarantine
		case "max_declines":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return Args6{}, fmt.Errorf("%w: max_declines=%q: want a positive integer", ErrArgs, v)
			}
			a.MaxDeclines = n
			continue
		default:
			return Args6{}, fmt.Errorf("%w: unknown key %q (want lease, offer_hold, quarantine, max_declines)", ErrArgs, k)
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return Args6{}, fmt.Errorf("%w: %s=%q: want a positive duration such as 1h", ErrArgs, k, v)
		}
		*dst = d
	}
	return a, nil
}

// Leases is the DHCPv6 allocator configuration (without ranges and hosts,
// which the dhcp6 section gives).
func (a Args6) Leases() leases.Config6 {
	return leases.Config6{LeaseTime: a.LeaseTime, OfferHold: a.OfferHold, Quarantine: a.Quarantine, MaxDeclines: a.MaxDeclines}
}

// Handler6 is the plugin's DHCPv6 handler.
type Handler6 struct {
	env Env6
	log *slog.Logger
}

// NewHandler6 checks the arguments and returns the DHCPv6 handler.
func NewHandler6(env Env6, args []string) (*Handler6, error) {
	if _, err := ParseArgs6(args); err != nil {
		return nil, err
	}
	if env.Svc == nil || !env.Svc.HasDHCP6() {
		return nil, fmt.Errorf("%w: the service has no DHCPv6 allocator", ErrArgs)
	}
	if env.DHCP == nil {
		env.DHCP = &dhcpconf.Policy6{}
	}
	if env.Policy == nil {
		env.Policy = func() Policy { return Policy{} }
	}
	h := &Handler6{env: env, log: env.Log}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h, nil
}

// On returns the handler for requests that arrive on ifi.
func (h *Handler6) On(ifi net.Interface) handler.Handler6 {
	in := dhcpconf.Interface{Name: ifi.Name}
	if addrs, err := ifi.Addrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() == nil {
				if ad, ok := netip.AddrFromSlice(n.IP); ok && !ad.IsLinkLocalUnicast() {
					ones, _ := n.Mask.Size()
					in.Addrs = append(in.Addrs, netip.PrefixFrom(ad, ones))
				}
			}
		}
	}
	return func(req, resp dhcpv6.DHCPv6) (dhcpv6.DHCPv6, bool) { return h.serve(req, resp, in) }
}

// Handle is the handler for a request whose interface is not known.
func (h *Handler6) Handle(req, resp dhcpv6.DHCPv6) (dhcpv6.DHCPv6, bool) {
	return h.serve(req, resp, dhcpconf.Interface{})
}

func (h *Handler6) serve(req, resp dhcpv6.DHCPv6, in dhcpconf.Interface) (dhcpv6.DHCPv6, bool) {
	start := time.Now()
	msg, err := req.GetInnerMessage()
	rm, ok := resp.(*dhcpv6.Message)
	if err != nil || !ok {
		return nil, true
	}
	out, outcome := h.handle(req, msg, rm, in)
	if h.env.Observe != nil {
		h.env.Observe("v6 "+msg.Type().String(), outcome, time.Since(start))
	}
	if out == nil {
		return nil, true
	}
	return out, false
}

// call6 is one DHCPv6 request being handled.
type call6 struct {
	msg, resp *dhcpv6.Message
	r         dhcpconf.Request6
	m         dhcpconf.Match6
	hostname  string
}

var logNoLink = logx.Cause("DHCPv6 request from no link of dhcp6.subnets: not served")

// request6 reads what the policy needs: the relay nearest the client, the
// client's DUID and MAC, its classes.
func request6(req dhcpv6.DHCPv6, msg *dhcpv6.Message, in dhcpconf.Interface) dhcpconf.Request6 {
	r := dhcpconf.Request6{Iface: in}
	var relayMAC net.HardwareAddr
	for d := req; d != nil && d.IsRelay(); {
		rel, ok := d.(*dhcpv6.RelayMessage)
		if !ok {
			break
		}
		r.Link, _ = netip.AddrFromSlice(rel.LinkAddr)
		if !r.Link.IsValid() {
			r.Link = netip.IPv6Unspecified()
		}
		r.InterfaceID = rel.Options.InterfaceID()
		if ht, lla := rel.Options.ClientLinkLayerAddress(); ht == iana.HWTypeEthernet && len(lla) == 6 {
			relayMAC = lla
		} else {
			relayMAC = nil
		}
		d = rel.Options.RelayMessage()
	}
	if cid := msg.Options.ClientID(); cid != nil {
		r.DUID = cid.ToBytes()
	}
	if mac, ok := dhcpconf.MACOfDUID(r.DUID); ok {
		r.MAC = mac
	} else if len(relayMAC) == 6 {
		r.MAC = domain.MAC(relayMAC)
	}
	for _, vc := range msg.Options.VendorClasses() {
		r.VendorClass = append(r.VendorClass, dhcpconf.VendorClass6{Enterprise: vc.EnterpriseNumber, Data: vc.Data})
	}
	for _, vo := range msg.Options.VendorOpts() {
		r.Enterprises = append(r.Enterprises, vo.EnterpriseNumber)
	}
	r.UserClass = msg.Options.UserClasses()
	return r
}

func (h *Handler6) handle(req dhcpv6.DHCPv6, msg, resp *dhcpv6.Message, in dhcpconf.Interface) (*dhcpv6.Message, string) {
	k := &call6{msg: msg, resp: resp, r: request6(req, msg, in)}
	if len(k.r.DUID) == 0 {
		return nil, "dropped" // RFC 8415 16: every client message but INFORMATION-REQUEST has a client id
	}
	k.m = h.env.DHCP.Match(k.r)
	if k.m.Subnet == nil && msg.Type() != dhcpv6.MessageTypeRelease && msg.Type() != dhcpv6.MessageTypeDecline {
		h.log.Warn(logNoLink, "duid", fmt.Sprintf("%x", k.r.DUID), "link", k.r.Link, "interface", in.Name)
		return nil, "no-subnet"
	}
	if f := msg.Options.FQDN(); f != nil && f.DomainName != nil && len(f.DomainName.Labels) > 0 {
		k.hostname = f.DomainName.Labels[0]
	}
	switch msg.Type() {
	case dhcpv6.MessageTypeSolicit:
		rapid := msg.GetOneOption(dhcpv6.OptionRapidCommit) != nil && k.m.Subnet.RapidCommit
		if rapid {
			resp.MessageType = dhcpv6.MessageTypeReply
			resp.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionRapidCommit})
			return h.assign(k, "reply")
		}
		return h.advertise(k)
	case dhcpv6.MessageTypeRequest:
		return h.assign(k, "reply")
	case dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRebind:
		return h.renew(k)
	case dhcpv6.MessageTypeRelease:
		for _, ia := range msg.Options.IANA() {
			c := h.client(k, ia)
			for _, a := range ia.Options.Addresses() {
				if ad, ok := addr6(a.IPv6Addr); ok {
					_, _ = h.env.Svc.Release6(c, ad)
				}
			}
		}
		resp.AddOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusSuccess, StatusMessage: "released"})
		return resp, "released"
	case dhcpv6.MessageTypeDecline:
		for _, ia := range msg.Options.IANA() {
			c := h.client(k, ia)
			for _, a := range ia.Options.Addresses() {
				if ad, ok := addr6(a.IPv6Addr); ok {
					_, _ = h.env.Svc.Decline6(c, ad)
				}
			}
		}
		resp.AddOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusSuccess, StatusMessage: "declined"})
		return resp, "declined"
	case dhcpv6.MessageTypeConfirm:
		code, text := iana.StatusSuccess, "on link"
		for _, ia := range msg.Options.IANA() {
			for _, a := range ia.Options.Addresses() {
				if ad, ok := addr6(a.IPv6Addr); !ok || !k.m.Subnet.Prefix.Contains(ad) {
					code, text = iana.StatusNotOnLink, "not on this link"
				}
			}
		}
		resp.AddOption(&dhcpv6.OptStatusCode{StatusCode: code, StatusMessage: text})
		return resp, "confirm"
	case dhcpv6.MessageTypeInformationRequest:
		h.decorate(k, h.env.Svc.NumberFor(k.r.MAC))
		return resp, "info"
	}
	return nil, "dropped"
}

func addr6(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok || !a.Is6() || a.Is4In6() || a.IsUnspecified() {
		return netip.Addr{}, false
	}
	return a, true
}

func (h *Handler6) client(k *call6, ia *dhcpv6.OptIANA) leases.Client6 {
	return leases.Client6{Key: leases.ClientKey6(k.r.DUID, ia.IaId), DUID: k.r.DUID, MAC: k.r.MAC, Hostname: k.hostname}
}

// lifetimes are the valid and preferred lifetimes, T1 and T2 for the link.
func (h *Handler6) lifetimes(k *call6) (valid, preferred, t1, t2 time.Duration) {
	valid = h.env.Svc.LeaseTime6()
	if s := k.m.Subnet; s != nil && s.LeaseTime > 0 {
		valid = s.LeaseTime
	}
	preferred = valid * 3 / 4
	if s := k.m.Subnet; s != nil && s.PreferredTime > 0 && s.PreferredTime <= valid {
		preferred = s.PreferredTime
	}
	return valid, preferred, preferred / 2, preferred * 4 / 5
}

func (h *Handler6) within(k *call6) func(netip.Addr) bool {
	if k.m.Subnet == nil {
		return nil
	}
	return k.m.Subnet.Prefix.Contains
}

// hint is the first address the client put in the IA.
func hint(ia *dhcpv6.OptIANA) netip.Addr {
	if a := ia.Options.OneAddress(); a != nil {
		ad, _ := addr6(a.IPv6Addr)
		return ad
	}
	return netip.Addr{}
}

func (h *Handler6) iaWith(k *call6, ia *dhcpv6.OptIANA, a netip.Addr) *dhcpv6.OptIANA {
	valid, preferred, t1, t2 := h.lifetimes(k)
	out := &dhcpv6.OptIANA{IaId: ia.IaId, T1: t1, T2: t2}
	out.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: a.AsSlice(), PreferredLifetime: preferred, ValidLifetime: valid})
	return out
}

func iaStatus(ia *dhcpv6.OptIANA, code iana.StatusCode, text string) *dhcpv6.OptIANA {
	out := &dhcpv6.OptIANA{IaId: ia.IaId}
	out.Options.Add(&dhcpv6.OptStatusCode{StatusCode: code, StatusMessage: text})
	return out
}

func (h *Handler6) advertise(k *call6) (*dhcpv6.Message, string) {
	outcome := "advertise"
	for _, ia := range k.msg.Options.IANA() {
		a, err := h.env.Svc.Offer6(h.client(k, ia), hint(ia), h.within(k))
		if err != nil {
			if answerOf(err) == silence {
				return nil, "unavailable"
			}
			h.log.Warn("no DHCPv6 offer", "duid", fmt.Sprintf("%x", k.r.DUID), "err", err)
			k.resp.AddOption(iaStatus(ia, iana.StatusNoAddrsAvail, domain.As(err).Reason))
			outcome = "no-address"
			continue
		}
		k.resp.AddOption(h.iaWith(k, ia, a))
	}
	h.decorate(k, h.env.Svc.NumberFor(k.r.MAC))
	return k.resp, outcome
}

// assign grants an address to each IA_NA of a REQUEST (or a rapid-commit
// SOLICIT): the one advertised to it, else its own, else a new one.
func (h *Handler6) assign(k *call6, outcome string) (*dhcpv6.Message, string) {
	number := ""
	for _, ia := range k.msg.Options.IANA() {
		c := h.client(k, ia)
		a, ok := h.env.Svc.Offered6(c.Key)
		if !ok || !h.env.DHCP.Contains(k.m.Subnet, a) {
			var err error
			if a, err = h.env.Svc.Offer6(c, hint(ia), h.within(k)); err != nil {
				if answerOf(err) == silence {
					return nil, "unavailable"
				}
				k.resp.AddOption(iaStatus(ia, iana.StatusNoAddrsAvail, domain.As(err).Reason))
				outcome = "no-address"
				continue
			}
		}
		n, err := h.ack(k, c, a)
		if err != nil {
			if answerOf(err) == silence {
				return nil, "error"
			}
			k.resp.AddOption(iaStatus(ia, iana.StatusNoAddrsAvail, domain.As(err).Reason))
			outcome = "no-address"
			continue
		}
		if n != "" {
			number = n
		}
		k.resp.AddOption(h.iaWith(k, ia, a))
	}
	h.decorate(k, number)
	return k.resp, outcome
}

// renew extends each address of each IA of a RENEW or REBIND; an address
// that cannot be extended is returned with lifetimes 0 (RFC 8415 18.3.4),
// and an IA without one gets a new address.
func (h *Handler6) renew(k *call6) (*dhcpv6.Message, string) {
	number, outcome := "", "reply"
	for _, ia := range k.msg.Options.IANA() {
		c := h.client(k, ia)
		out := &dhcpv6.OptIANA{IaId: ia.IaId}
		valid, preferred, t1, t2 := h.lifetimes(k)
		granted := false
		for _, ad := range ia.Options.Addresses() {
			a, ok := addr6(ad.IPv6Addr)
			if !ok {
				continue
			}
			if !h.env.DHCP.Contains(k.m.Subnet, a) || !h.env.Svc.InRange6(a) {
				out.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: ad.IPv6Addr})
				continue
			}
			n, err := h.ack(k, c, a)
			if err != nil {
				if answerOf(err) == silence {
					return nil, "error"
				}
				out.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: ad.IPv6Addr})
				outcome = "nak"
				continue
			}
			if n != "" {
				number = n
			}
			granted = true
			out.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: ad.IPv6Addr, PreferredLifetime: preferred, ValidLifetime: valid})
		}
		if !granted {
			if a, err := h.env.Svc.Offer6(c, netip.Addr{}, h.within(k)); err == nil {
				if n, err := h.ack(k, c, a); err == nil {
					if n != "" {
						number = n
					}
					granted = true
					out.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: a.AsSlice(), PreferredLifetime: preferred, ValidLifetime: valid})
				}
			}
		}
		if granted {
			out.T1, out.T2 = t1, t2
		} else if len(out.Options.Options) == 0 {
			out.Options.Add(&dhcpv6.OptStatusCode{StatusCode: iana.StatusNoBinding, StatusMessage: "no binding for this IA"})
		}
		k.resp.AddOption(out)
	}
	h.decorate(k, number)
	return k.resp, outcome
}

func (h *Handler6) ack(k *call6, c leases.Client6, a netip.Addr) (string, error) {
	valid, _, _, _ := h.lifetimes(k)
	pol := h.env.Policy()
	ack, err := h.env.Svc.Ack6(service.AckRequest6{Client: c, Addr: a, LeaseTime: valid,
		AutoNumber: k.m.AutoNumber() || autoNumber6(pol, k.r), Phone: phoneOf6(k)})
	if err != nil {
		h.log.Info(logNAK, "duid", fmt.Sprintf("%x", k.r.DUID), "ipv6", a, "reason", domain.As(err).Reason)
		return "", err
	}
	return ack.Number, nil
}

// decorate puts the dhcp6 section's options into the reply.
func (h *Handler6) decorate(k *call6, number string) {
	vars := dhcpconf.Vars{Number: number, MAC: k.r.MAC, Hostname: k.hostname}
	for _, o := range h.env.DHCP.OptionsFor(k.m) {
		k.resp.UpdateOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionCode(o.Code), OptionData: o.Value(vars)})
	}
}

// autoNumber6 applies numbering.dhcp.auto_assign.vendor_class to option
// 16's data.
func autoNumber6(pol Policy, r dhcpconf.Request6) bool {
	for _, vc := range r.VendorClass {
		for _, d := range vc.Data {
			if autoNumber(pol, string(d)) {
				return true
			}
		}
	}
	return false
}

// phoneOf6 describes a client that looks like a phone for the inbox.
func phoneOf6(k *call6) *numbering.InboxEntry {
	class := ""
	for _, vc := range k.r.VendorClass {
		for _, d := range vc.Data {
			if class == "" && domain.IsText(string(d)) {
				class = string(d)
			}
		}
	}
	v, model := phones.Identify(k.r.MAC, class)
	vendor := v.Name
	if pc := k.m.PhoneClass(); pc != nil && vendor == "" {
		vendor = pc.Name
	}
	if vendor == "" {
		return nil
	}
	if model == "" {
		model = class
	}
	return &numbering.InboxEntry{Vendor: vendor, Model: model}
}
