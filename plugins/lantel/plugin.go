// Package lantel is the CoreDHCP plugin that makes lanteld's DHCP server.
// It is an adapter: it reads a DHCPv4 message, makes one call to lantel's
// service (package internal/service: the lease and the number in one
// transaction) and packs the answer into the reply. What stays here is
// DHCP's own: the message type, the server identifier, the client's
// subnet, the NAK, the vendor class that asks for auto-numbering and the
// options 224/225.
//
// Unlike upstream plugins it needs the service, which CoreDHCP's
// Setup4(args...) cannot pass, so the package exports NewHandler, which
// lanteld calls with it, binding the handler to each interface it serves
// (Handler.On); New wraps the same as a CoreDHCP plugin. The plugin's
// arguments (address ranges, lease=, ...) configure the service's
// allocator: lanteld parses them with ParseArgs before it opens the
// service. There are no package globals.
//
// What the plugin needs of the service is the interface Service; what a
// client gets when the service refuses or fails is decided by the error's
// kind, in one table (answers).
package lantel

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/coredhcp/coredhcp/handler"
	"github.com/coredhcp/coredhcp/plugins"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/dhcpconf"
	"github.com/lantel/lantel/internal/logx"
	"github.com/lantel/lantel/internal/phones"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
)

// Name is the plugin's name in the server4 plugin list.
const Name = "lantel"

// Service is what the plugin needs of lantel's service (*service.Service,
// with DHCP configured: service.Config.Leases). A refusal is a
// *domain.Error; a failure one of kind Unavailable or Stale.
type Service interface {
	// HasDHCP reports whether the service allocates leases.
	HasDHCP() bool
	// InRange reports whether a is one of the allocator's addresses.
	InRange(a netip.Addr) bool
	// LeaseTime is the lease time when neither the subnet nor the chain
	// sets one.
	LeaseTime() time.Duration
	// AnswersDiscover reports whether this node answers the client (a
	// cluster spreads clients over its nodes).
	AnswersDiscover(mac domain.MAC, waited time.Duration) bool
	// Discover holds an address for a DISCOVER (within: the client's
	// subnet) and tells the client's number.
	Discover(c leases.Client, requested netip.Addr, within func(netip.Addr) bool) (service.Offer, error)
	// Forget drops the client's offer.
	Forget(key string)
	// Ack grants or renews a lease and puts the client's number online.
	Ack(r service.AckRequest) (service.Ack, error)
	// Release and Decline end the client's lease of a.
	Release(c leases.Client, a netip.Addr) (bool, error)
	Decline(c leases.Client, a netip.Addr) (bool, error)
	// NumberFor is the number a client with this MAC has (or gets).
	NumberFor(mac domain.MAC) string
}

var _ Service = (*service.Service)(nil)

// Env is what the plugin needs from lanteld.
type Env struct {
	Svc Service // with DHCP configured
	// Policy returns the numbering policy in force; it is read for every
	// message, so a reload of the numbering section takes effect at once.
	Policy func() Policy
	Log    *slog.Logger
	// Observe, when set, is called once per handled message.
	Observe func(msg string, outcome string, d time.Duration)
	// DHCP is the dhcp4 section (subnets, classes, hosts, options); nil
	// or empty: the subnet comes from the netmask plugin, as before.
	DHCP *dhcpconf.Policy
}

// Policy is the part of the numbering section the plugin follows.
type Policy struct {
	// AutoAssign: clients whose vendor class (option 60) matches one of
	// these get a number from the dynamic pool.
	AutoAssign []*regexp.Regexp
	// OptNumber, OptServer: option codes for the full number (ASCII) and
	// the LTNP/1 server (IPv4 + port).
	OptNumber, OptServer uint8
	// LTNP is the LTNP/1 server's address; an unspecified IP is replaced
	// by the DHCP server identifier.
	LTNP netip.AddrPort
}

// New returns the plugin for env.
func New(env Env) *plugins.Plugin {
	return &plugins.Plugin{Name: Name, Setup4: func(args ...string) (handler.Handler4, error) {
		h, err := NewHandler(env, args)
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	}}
}

// Args are the plugin's parsed arguments.
type Args struct {
	Ranges      []leases.Range
	LeaseTime   time.Duration // when no earlier plugin set option 51
	OfferHold   time.Duration
	Quarantine  time.Duration
	MaxDeclines int
	HeldBack    int // 0: the allocator's default; -1 (held_back=0): none
}

// ErrArgs is wrapped by every argument error.
var ErrArgs = errors.New("lantel plugin arguments")

// ParseArgs parses `RANGE... [lease=DUR] [offer_hold=DUR] [quarantine=DUR]
// [max_declines=N] [held_back=N]`, RANGE being FIRST-LAST or a single IPv4
// address. Ranges are given here or in the dhcp4 section's subnets (lanteld
// checks that there are some, in one place).
func ParseArgs(args []string) (Args, error) {
	a := Args{LeaseTime: time.Hour, OfferHold: 30 * time.Second, Quarantine: 10 * time.Minute, MaxDeclines: 3}
	for _, arg := range args {
		k, v, isKV := strings.Cut(arg, "=")
		if !isKV {
			r, err := leases.ParseRange(arg)
			if err != nil {
				return Args{}, fmt.Errorf("%w: %w", ErrArgs, err)
			}
			a.Ranges = append(a.Ranges, r)
			continue
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
				return Args{}, fmt.Errorf("%w: max_declines=%q: want a positive integer", ErrArgs, v)
			}
			a.MaxDeclines = n
			continue
		case "held_back":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return Args{}, fmt.Errorf("%w: held_back=%q: want 0 or more addresses", ErrArgs, v)
			}
			a.HeldBack = n
			if n == 0 {
				a.HeldBack = -1
			}
			continue
		default:
			return Args{}, fmt.Errorf("%w: unknown key %q (want lease, offer_hold, quarantine, max_declines, held_back)", ErrArgs, k)
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return Args{}, fmt.Errorf("%w: %s=%q: want a positive duration such as 1h", ErrArgs, k, v)
		}
		*dst = d
	}
	return a, nil
}

// Leases is the allocator configuration the arguments describe (lanteld
// gives it to the service before it sets the chain up).
func (a Args) Leases() leases.Config {
	return leases.Config{Ranges: a.Ranges, LeaseTime: a.LeaseTime, OfferHold: a.OfferHold,
		Quarantine: a.Quarantine, MaxDeclines: a.MaxDeclines, HeldBack: a.HeldBack}
}

// Handler is the plugin's handler.
type Handler struct {
	env Env
	log *slog.Logger
	// subnets: the dhcp4 section has subnets, so a request that is in
	// none is not served.
	subnets bool
}

// NewHandler checks the arguments and returns the handler.
func NewHandler(env Env, args []string) (*Handler, error) {
	if _, err := ParseArgs(args); err != nil {
		return nil, err
	}
	if env.Svc == nil || !env.Svc.HasDHCP() {
		return nil, fmt.Errorf("%w: the service has no lease allocator", ErrArgs)
	}
	if env.DHCP == nil {
		env.DHCP = &dhcpconf.Policy{}
	}
	h := &Handler{env: env, log: env.Log, subnets: len(env.DHCP.Subnets) > 0}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h, nil
}

// On returns the handler for requests that arrive on ifi: a direct
// client's subnet is the one on that interface.
func (h *Handler) On(ifi net.Interface) handler.Handler4 {
	in := dhcpconf.Interface{Name: ifi.Name}
	if addrs, err := ifi.Addrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if p, ok := netipx(n); ok {
					in.Addrs = append(in.Addrs, p)
				}
			}
		}
	}
	return func(req, resp *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, bool) { return h.serve(req, resp, in) }
}

func netipx(n *net.IPNet) (netip.Prefix, bool) {
	a := toAddr(n.IP)
	ones, bits := n.Mask.Size()
	if !a.IsValid() || bits != 32 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones), true
}

func clientOf(req *dhcpv4.DHCPv4) (leases.Client, bool) {
	if len(req.ClientHWAddr) != 6 {
		return leases.Client{}, false
	}
	mac := domain.MAC(req.ClientHWAddr)
	return leases.Client{Key: leases.ClientKey(req.Options.Get(dhcpv4.OptionClientIdentifier), mac),
		MAC: mac, Hostname: req.HostName()}, true
}

func toAddr(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip.To4())
	if !ok || ip.To4() == nil || a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

// subnet returns a filter for the client's subnet: the relay's (giaddr)
// when relayed, else the server identifier's, both with the netmask an
// earlier plugin put in the reply. Without a netmask every range is allowed.
func subnet(req, resp *dhcpv4.DHCPv4) func(netip.Addr) bool {
	mask := net.IPMask(ip4Opt(resp.Options, dhcpv4.OptionSubnetMask))
	base := toAddr(req.GatewayIPAddr)
	if !base.IsValid() {
		base = addrOpt(resp.Options, dhcpv4.OptionServerIdentifier)
	}
	if len(mask) != 4 || !base.IsValid() {
		return nil
	}
	ones, _ := mask.Size()
	p, err := base.Prefix(ones)
	if err != nil {
		return nil
	}
	return p.Contains
}

func (h *Handler) leaseTime(k *call) time.Duration {
	if s := k.m.Subnet; s != nil && s.LeaseTime > 0 {
		return s.LeaseTime
	}
	if d := leaseTimeOpt(k.resp, 0); d > 0 {
		return d
	}
	return h.env.Svc.LeaseTime()
}

// Handle is the plugin's Handler4, for a request whose interface is not
// known (see On).
func (h *Handler) Handle(req, resp *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, bool) {
	return h.serve(req, resp, dhcpconf.Interface{})
}

func (h *Handler) serve(req, resp *dhcpv4.DHCPv4, in dhcpconf.Interface) (*dhcpv4.DHCPv4, bool) {
	start := time.Now()
	mt := msgType(req)
	out, outcome := h.handle(req, resp, mt, in)
	if h.env.Observe != nil {
		h.env.Observe(mt.String(), outcome, time.Since(start))
	}
	if out == nil {
		return nil, true
	}
	return out, false
}

// logNoSubnet is the line of a request in no subnet (rate-limited).
var logNoSubnet = logx.Cause("request in no subnet of dhcp4.subnets: not served")

// call is one request being handled.
type call struct {
	req, resp *dhcpv4.DHCPv4
	c         leases.Client
	m         dhcpconf.Match
}

func (h *Handler) handle(req, resp *dhcpv4.DHCPv4, mt dhcpv4.MessageType, in dhcpconf.Interface) (*dhcpv4.DHCPv4, string) {
	c, ok := clientOf(req)
	if !ok {
		return nil, "dropped"
	}
	k := &call{req: req, resp: resp, c: c}
	switch mt {
	case dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeInform:
		k.m = h.env.DHCP.Match(dhcpconf.RequestOf(req, in))
		if h.subnets && k.m.Subnet == nil {
			h.log.Warn(logNoSubnet, "mac", c.MAC, "giaddr", req.GatewayIPAddr.String(), "ciaddr", req.ClientIPAddr.String(), "interface", in.Name)
			return nil, "no-subnet"
		}
	}
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		return h.discover(k)
	case dhcpv4.MessageTypeRequest:
		return h.request(k)
	case dhcpv4.MessageTypeRelease:
		if a := toAddr(req.ClientIPAddr); a.IsValid() {
			_, _ = h.env.Svc.Release(c, a)
		}
		return nil, "released"
	case dhcpv4.MessageTypeDecline:
		if a := toAddr(req.RequestedIPAddress()); a.IsValid() {
			_, _ = h.env.Svc.Decline(c, a)
		}
		return nil, "declined"
	case dhcpv4.MessageTypeInform:
		// A static-IP phone learns the LTNP/1 server (and its number, if
		// its MAC holds one) here.
		resp.YourIPAddr = net.IPv4zero
		resp.Options.Del(dhcpv4.OptionIPAddressLeaseTime)
		number := h.env.Svc.NumberFor(c.MAC)
		h.numberOptions(resp, h.env.Policy(), number, true)
		h.decorate(k, number)
		return resp, "ack"
	}
	return nil, "dropped"
}

// within is the client's subnet: the dhcp4 subnet matched, or else the
// one the netmask plugin's option and giaddr or the server id give.
func within(k *call) func(netip.Addr) bool {
	if k.m.Subnet != nil {
		return k.m.Subnet.Prefix.Contains
	}
	return subnet(k.req, k.resp)
}

func (h *Handler) discover(k *call) (*dhcpv4.DHCPv4, string) {
	c, req, resp := k.c, k.req, k.resp
	if !h.env.Svc.AnswersDiscover(c.MAC, time.Duration(req.NumSeconds)*time.Second) {
		return nil, "other-node" // another lanteld node of the cluster answers this client
	}
	o, err := h.env.Svc.Discover(c, addrOpt(req.Options, dhcpv4.OptionRequestedIPAddress), within(k))
	if err != nil {
		if answerOf(err) == silence {
			return nil, "unavailable" // cut off from the cluster, or storage: another node answers, or a retransmission
		}
		h.log.Warn("no offer", "mac", c.MAC, "err", err)
		return nil, "no-address"
	}
	resp.YourIPAddr = o.Addr.AsSlice()
	setLeaseTime(resp, h.leaseTime(k))
	h.numberOptions(resp, h.env.Policy(), o.Number, false)
	h.decorate(k, o.Number)
	return resp, "offer"
}

// decorate puts the dhcp4 section's part into a reply: the subnet's mask
// and next server, and the options of the subnet, classes and host.
func (h *Handler) decorate(k *call, number string) {
	resp := k.resp
	if s := k.m.Subnet; s != nil {
		setOpt(resp, dhcpv4.OptionSubnetMask, net.CIDRMask(s.Prefix.Bits(), 32))
		resp.ServerIPAddr = net.IPv4zero
		if s.NextServer.IsValid() {
			resp.ServerIPAddr = s.NextServer.AsSlice()
		}
	}
	opts := h.env.DHCP.OptionsFor(k.m)
	if len(opts) == 0 {
		return
	}
	vars := dhcpconf.Vars{Number: number, MAC: k.c.MAC, Server: addrOpt(resp.Options, dhcpv4.OptionServerIdentifier), Hostname: k.c.Hostname}
	for _, o := range opts {
		setOpt(resp, dhcpv4.GenericOptionCode(o.Code), o.Value(vars))
	}
	fit(k.req, resp, opts)
}

// fit drops configured options the client did not ask for (option 55),
// last first, while the reply is larger than the client takes (option 57,
// else RFC 2131's 576 bytes).
func fit(req, resp *dhcpv4.DHCPv4, opts dhcpconf.Options) {
	limit := 576
	if n, err := req.MaxMessageSize(); err == nil && int(n) > limit {
		limit = int(n)
	}
	asked := req.ParameterRequestList()
	for i := len(opts) - 1; i >= 0 && len(resp.ToBytes())+28 > limit; i-- {
		code := dhcpv4.GenericOptionCode(opts[i].Code)
		if !asked.Has(code) {
			resp.Options.Del(code)
		}
	}
}

// numberOptions puts the full number (when there is one) and, when there
// is a number or always is set, the LTNP/1 server into the reply.
func (h *Handler) numberOptions(resp *dhcpv4.DHCPv4, pol Policy, number string, always bool) {
	if number != "" {
		setOpt(resp, dhcpv4.GenericOptionCode(pol.OptNumber), []byte(number))
	}
	if number == "" && !always {
		return
	}
	if srv := ltnpAddr(pol.LTNP, resp); srv.IsValid() {
		ip := srv.Addr().As4()
		setOpt(resp, dhcpv4.GenericOptionCode(pol.OptServer),
			[]byte{ip[0], ip[1], ip[2], ip[3], byte(srv.Port() >> 8), byte(srv.Port())})
	}
}

// logNAK is the line of a NAK: a client can cause it at will, so it is
// rate-limited (see internal/logx), as "no offer" (a warning) is.
var logNAK = logx.Cause("request refused")

func (h *Handler) nak(req, resp *dhcpv4.DHCPv4, reason string) (*dhcpv4.DHCPv4, string) {
	h.log.Info(logNAK, "mac", req.ClientHWAddr.String(), "reason", reason)
	mods := []dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeNak), dhcpv4.WithOption(dhcpv4.OptMessage(reason))}
	if sid := resp.ServerIdentifier(); sid != nil {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptServerIdentifier(sid)))
	}
	nak, err := dhcpv4.NewReplyFromRequest(req, mods...)
	if err != nil {
		return nil, "dropped"
	}
	nak.YourIPAddr = net.IPv4zero
	nak.ServerIPAddr = net.IPv4zero
	return nak, "nak"
}

func (h *Handler) request(k *call) (*dhcpv4.DHCPv4, string) {
	c, req, resp := k.c, k.req, k.resp
	ours := ip4Opt(resp.Options, dhcpv4.OptionServerIdentifier)
	sid := ip4Opt(req.Options, dhcpv4.OptionServerIdentifier)
	if sid != nil && ours != nil && !bytes.Equal(sid, ours) {
		// SELECTING another server's offer: ours is freed, no reply.
		h.env.Svc.Forget(c.Key)
		return nil, "other-server"
	}
	a := addrOpt(req.Options, dhcpv4.OptionRequestedIPAddress)
	if !a.IsValid() {
		a = toAddr(req.ClientIPAddr) // RENEWING / REBINDING
	}
	if !a.IsValid() {
		return h.nak(req, resp, "no requested address")
	}
	if within := within(k); within != nil && !within(a) {
		return h.nak(req, resp, "address "+a.String()+" is not on the client's subnet")
	}
	if !h.env.Svc.InRange(a) {
		return h.nak(req, resp, "address "+a.String()+" is not ours")
	}
	pol := h.env.Policy()
	d := h.leaseTime(k)
	class := req.ClassIdentifier()
	ack, err := h.env.Svc.Ack(service.AckRequest{Client: c, Addr: a, Selecting: sid != nil,
		LeaseTime: d, AutoNumber: k.m.AutoNumber() || autoNumber(pol, class), Phone: phoneOf(k, class)})
	if err != nil {
		if answerOf(err) == silence {
			return nil, "error" // no reply: the client retransmits (or another node answers)
		}
		return h.nak(req, resp, domain.As(err).Reason)
	}
	resp.YourIPAddr = a.AsSlice()
	setLeaseTime(resp, d)
	h.numberOptions(resp, pol, ack.Number, false)
	h.decorate(k, ack.Number)
	return resp, "ack"
}

// phoneOf describes the client for the inbox when it looks like a phone:
// a vendor's phone by its option 60 or MAC prefix (phones.Identify), or a
// member of a phone class. The model is the one option 60 (class) names,
// else the vendor class as sent (a text one).
func phoneOf(k *call, class string) *numbering.InboxEntry {
	if !domain.IsText(class) {
		class = dhcpconf.VendorText([]byte(class)) // the binary RFC 3925 form (Polycom)
		if !domain.IsText(class) {
			class = ""
		}
	}
	v, model := phones.Identify(k.c.MAC, class)
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

// autoNumber reports whether a vendor class asks for a pool number.
func autoNumber(pol Policy, vendorClass string) bool {
	if vendorClass == "" {
		return false
	}
	for _, re := range pol.AutoAssign {
		if re.MatchString(vendorClass) {
			return true
		}
	}
	return false
}

func ltnpAddr(a netip.AddrPort, resp *dhcpv4.DHCPv4) netip.AddrPort {
	if !a.IsValid() {
		return a
	}
	if a.Addr().IsUnspecified() {
		sid := addrOpt(resp.Options, dhcpv4.OptionServerIdentifier)
		if !sid.IsValid() {
			return netip.AddrPort{}
		}
		return netip.AddrPortFrom(sid, a.Port())
	}
	return a
}
