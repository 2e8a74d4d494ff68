// Package lantel is the CoreDHCP plugin that makes lanteld's DHCP server.
// It is an adapter: it reads a DHCPv4 message, makes one call to lantel's
// service (package internal/service: the lease and the number in one
// transaction) and packs the answer into the reply. What stays here is
// DHCP's own: the message type, the server identifier, the client's
// subnet, the NAK, the vendor class that asks for auto-numbering and the
// options 224/225.
//
// Unlike upstream plugins it needs the service, which CoreDHCP's
// Setup4(args...) cannot pass, so the package exports New, which lanteld
// calls with it and whose result it registers as the plugin "lantel". The
// plugin's arguments (address ranges, lease=, ...) configure the service's
// allocator: lanteld parses them with ParseArgs before it opens the
// service. There are no package globals.
package lantel

import (
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
	"github.com/lantel/lantel/internal/logx"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/leases"
)

// Name is the plugin's name in the server4 plugin list.
const Name = "lantel"

// Env is what the plugin needs from lanteld.
type Env struct {
	Svc *service.Service // with DHCP configured (service.Config.Leases)
	// Policy returns the numbering policy in force; it is read for every
	// message, so a reload of the numbering section takes effect at once.
	Policy func() Policy
	Log    *slog.Logger
	// Observe, when set, is called once per handled message.
	Observe func(msg string, outcome string, d time.Duration)
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
// [max_declines=N]`, RANGE being FIRST-LAST or a single IPv4 address.
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
	if len(a.Ranges) == 0 {
		return Args{}, fmt.Errorf("%w: at least one address range is required, e.g. 192.0.2.100-192.0.2.199", ErrArgs)
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
}

// NewHandler checks the arguments and returns the handler.
func NewHandler(env Env, args []string) (*Handler, error) {
	if _, err := ParseArgs(args); err != nil {
		return nil, err
	}
	if env.Svc == nil || !env.Svc.HasDHCP() {
		return nil, fmt.Errorf("%w: the service has no lease allocator", ErrArgs)
	}
	h := &Handler{env: env, log: env.Log}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h, nil
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
	mask := resp.SubnetMask()
	base := toAddr(req.GatewayIPAddr)
	if !base.IsValid() {
		base = toAddr(resp.ServerIdentifier())
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

func (h *Handler) leaseTime(resp *dhcpv4.DHCPv4) time.Duration {
	if d := resp.IPAddressLeaseTime(0); d > 0 {
		return d
	}
	return h.env.Svc.LeaseTime()
}

// Handle is the plugin's Handler4.
func (h *Handler) Handle(req, resp *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, bool) {
	start := time.Now()
	mt := req.MessageType()
	out, outcome := h.handle(req, resp, mt)
	if h.env.Observe != nil {
		h.env.Observe(mt.String(), outcome, time.Since(start))
	}
	if out == nil {
		return nil, true
	}
	return out, false
}

func (h *Handler) handle(req, resp *dhcpv4.DHCPv4, mt dhcpv4.MessageType) (*dhcpv4.DHCPv4, string) {
	c, ok := clientOf(req)
	if !ok {
		return nil, "dropped"
	}
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		return h.discover(c, req, resp)
	case dhcpv4.MessageTypeRequest:
		return h.request(c, req, resp)
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
		h.numberOptions(resp, h.env.Policy(), h.env.Svc.NumberFor(c.MAC), true)
		return resp, "ack"
	}
	return nil, "dropped"
}

func (h *Handler) discover(c leases.Client, req, resp *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, string) {
	a, err := h.env.Svc.Offer(c, toAddr(req.RequestedIPAddress()), subnet(req, resp))
	if err != nil {
		h.log.Warn("no offer", "mac", c.MAC, "err", err)
		return nil, "no-address"
	}
	resp.YourIPAddr = a.AsSlice()
	resp.UpdateOption(dhcpv4.OptIPAddressLeaseTime(h.leaseTime(resp)))
	h.numberOptions(resp, h.env.Policy(), h.env.Svc.NumberFor(c.MAC), false)
	return resp, "offer"
}

// numberOptions puts the full number (when there is one) and, when there
// is a number or always is set, the LTNP/1 server into the reply.
func (h *Handler) numberOptions(resp *dhcpv4.DHCPv4, pol Policy, number string, always bool) {
	if number != "" {
		resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(pol.OptNumber), []byte(number)))
	}
	if number == "" && !always {
		return
	}
	if srv := ltnpAddr(pol.LTNP, resp); srv.IsValid() {
		ip := srv.Addr().As4()
		resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(pol.OptServer),
			[]byte{ip[0], ip[1], ip[2], ip[3], byte(srv.Port() >> 8), byte(srv.Port())}))
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

func (h *Handler) request(c leases.Client, req, resp *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, string) {
	ours := resp.ServerIdentifier()
	sid := req.ServerIdentifier()
	if sid != nil && ours != nil && !sid.Equal(ours) {
		// SELECTING another server's offer: ours is freed, no reply.
		h.env.Svc.Forget(c.Key)
		return nil, "other-server"
	}
	a := toAddr(req.RequestedIPAddress())
	if !a.IsValid() {
		a = toAddr(req.ClientIPAddr) // RENEWING / REBINDING
	}
	if !a.IsValid() {
		return h.nak(req, resp, "no requested address")
	}
	if within := subnet(req, resp); within != nil && !within(a) {
		return h.nak(req, resp, "address "+a.String()+" is not on the client's subnet")
	}
	if !h.env.Svc.InRange(a) {
		return h.nak(req, resp, "address "+a.String()+" is not ours")
	}
	pol := h.env.Policy()
	d := h.leaseTime(resp)
	ack, err := h.env.Svc.Ack(service.AckRequest{Client: c, Addr: a, Selecting: sid != nil,
		LeaseTime: d, AutoNumber: autoNumber(pol, req.ClassIdentifier())})
	if e := domain.As(err); e != nil {
		return h.nak(req, resp, e.Reason)
	}
	if err != nil {
		return nil, "error" // no reply: the client retransmits
	}
	resp.YourIPAddr = a.AsSlice()
	resp.UpdateOption(dhcpv4.OptIPAddressLeaseTime(d))
	h.numberOptions(resp, pol, ack.Number, false)
	return resp, "ack"
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
		sid := toAddr(resp.ServerIdentifier())
		if !sid.IsValid() {
			return netip.AddrPort{}
		}
		return netip.AddrPortFrom(sid, a.Port())
	}
	return a
}
