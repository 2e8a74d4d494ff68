// Package lantel is the CoreDHCP plugin that makes lanteld's DHCP server: it
// assigns leases from lantel's allocator (package leases) and, in the same
// bbolt transaction, puts the client's LAN telephone number online at the
// leased address (package numbering). See README.md.
//
// Unlike upstream plugins it needs the number directory and the store, which
// CoreDHCP's Setup4(args...) cannot pass, so the package exports New, which
// lanteld calls with them and whose result it registers as the plugin
// "lantel". There are no package globals: all state is in the handler.
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
	"sync"
	"time"

	"github.com/coredhcp/coredhcp/handler"
	"github.com/coredhcp/coredhcp/plugins"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
	bolt "go.etcd.io/bbolt"
)

// Name is the plugin's name in the server4 plugin list.
const Name = "lantel"

// Env is what the plugin needs from lanteld.
type Env struct {
	DB     *bolt.DB
	Writer numbering.Writer // group committer shared with the LTNP server
	Dir    *numbering.Directory
	// Policy returns the numbering policy in force; it is read for every
	// message, so a reload of the numbering section takes effect at once.
	Policy func() Policy
	Log    *slog.Logger
	// OnClose registers a stopper for the plugin's background work.
	OnClose func(func() error)
	// Observe, when set, is called once per handled message.
	Observe func(msg string, outcome string, d time.Duration)
	// Ready, when set, is called with the handler once it is set up.
	Ready func(*Handler)
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
		h, err := setup(env, args)
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
		default:
			return Args{}, fmt.Errorf("%w: unknown key %q (want lease, offer_hold, quarantine, max_declines)", ErrArgs, k)
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

// Handler is the plugin's state.
type Handler struct {
	env    Env
	store  *leases.Store
	log    *slog.Logger
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once
}

func setup(env Env, args []string) (*Handler, error) {
	a, err := ParseArgs(args)
	if err != nil {
		return nil, err
	}
	store, err := leases.Open(env.DB, leases.Config{Ranges: a.Ranges, LeaseTime: a.LeaseTime,
		OfferHold: a.OfferHold, Quarantine: a.Quarantine, MaxDeclines: a.MaxDeclines})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrArgs, err)
	}
	h := &Handler{env: env, store: store, log: env.Log, stop: make(chan struct{}), done: make(chan struct{})}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	go h.reclaimLoop(time.Second)
	if env.OnClose != nil {
		env.OnClose(h.Close)
	}
	if env.Ready != nil {
		env.Ready(h)
	}
	return h, nil
}

// Store is the lease store (for tests and the admin side).
func (h *Handler) Store() *leases.Store { return h.store }

// Close stops the reclaimer.
func (h *Handler) Close() error {
	h.closed.Do(func() { close(h.stop); <-h.done })
	return nil
}

func (h *Handler) reclaimLoop(every time.Duration) {
	defer close(h.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		h.Reclaim()
	}
}

// Reclaim ends expired leases (taking their numbers offline in the same
// transaction) and forgets stale offers.
func (h *Handler) Reclaim() {
	for {
		var ended []leases.Lease
		var eff leases.Effects
		var offline []string
		err := h.env.Writer.Do(func(tx *bolt.Tx) error {
			var err error
			offline = offline[:0]
			ended, eff, err = h.store.ReclaimTx(tx, h.env.Dir.Now(), 500)
			if err != nil {
				return err
			}
			offline, err = h.unbindEnded(tx, ended, offline)
			return err
		})
		if err != nil {
			h.log.Error("lease reclamation failed", "err", err)
			return
		}
		h.store.Apply(eff)
		for i, l := range ended {
			h.log.Info("lease expired", "ipv4", l.Addr, "mac", macString(l.MAC), "hostname", l.Hostname)
			if offline[i] != "" {
				h.log.Info("number offline", "number", offline[i], "ipv4", l.Addr, "reason", "lease expired")
			}
		}
		if len(ended) < 500 {
			break
		}
	}
	h.store.PurgeOffers()
}

// unbindEnded takes offline, in tx, the numbers of leases that ended; it
// appends their full numbers ("" for none) to offline.
func (h *Handler) unbindEnded(tx *bolt.Tx, ended []leases.Lease, offline []string) ([]string, error) {
	for _, l := range ended {
		n, err := h.env.Dir.UnbindLeaseTx(tx, numbering.MAC(l.MAC), l.Addr)
		if err != nil {
			return offline, err
		}
		offline = append(offline, n)
	}
	return offline, nil
}

func macString(m [6]byte) string { return net.HardwareAddr(m[:]).String() }

func clientOf(req *dhcpv4.DHCPv4) (leases.Client, bool) {
	if len(req.ClientHWAddr) != 6 {
		return leases.Client{}, false
	}
	mac := [6]byte(req.ClientHWAddr)
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
	return h.store.Config().LeaseTime
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
		h.release(c, req)
		return nil, "released"
	case dhcpv4.MessageTypeDecline:
		h.decline(c, req)
		return nil, "declined"
	case dhcpv4.MessageTypeInform:
		resp.YourIPAddr = net.IPv4zero
		resp.Options.Del(dhcpv4.OptionIPAddressLeaseTime)
		return resp, "ack"
	}
	return nil, "dropped"
}

func (h *Handler) discover(c leases.Client, req, resp *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, string) {
	a, err := h.store.Offer(c, toAddr(req.RequestedIPAddress()), subnet(req, resp))
	if err != nil {
		h.log.Warn("no offer", "mac", macString(c.MAC), "err", err)
		return nil, "no-address"
	}
	resp.YourIPAddr = a.AsSlice()
	resp.UpdateOption(dhcpv4.OptIPAddressLeaseTime(h.leaseTime(resp)))
	return resp, "offer"
}

func (h *Handler) nak(req, resp *dhcpv4.DHCPv4, reason string) (*dhcpv4.DHCPv4, string) {
	h.log.Info("request refused", "mac", req.ClientHWAddr.String(), "reason", reason)
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
		h.store.Forget(c.Key)
		return nil, "other-server"
	}
	requested, ciaddr := toAddr(req.RequestedIPAddress()), toAddr(req.ClientIPAddr)
	a := requested
	if !a.IsValid() {
		a = ciaddr // RENEWING / REBINDING
	}
	if !a.IsValid() {
		return h.nak(req, resp, "no requested address")
	}
	if within := subnet(req, resp); within != nil && !within(a) {
		return h.nak(req, resp, "address "+a.String()+" is not on the client's subnet")
	}
	if !h.store.InRange(a) {
		return h.nak(req, resp, "address "+a.String()+" is not ours")
	}
	selecting := sid != nil
	pol := h.env.Policy()
	auto := false
	if vc := req.ClassIdentifier(); vc != "" {
		for _, re := range pol.AutoAssign {
			if re.MatchString(vc) {
				auto = true
				break
			}
		}
	}
	d := h.leaseTime(resp)
	var (
		lease   *leases.Lease
		ended   []leases.Lease
		eff     leases.Effects
		number  string
		offline []string
		refusal error
	)
	err := h.env.Writer.Do(func(tx *bolt.Tx) error {
		lease, ended, offline, number, refusal = nil, nil, offline[:0], "", nil
		now := h.env.Dir.Now()
		if selecting {
			// The requested address must be what we offered, or the
			// client's own lease.
			if off, ok := h.store.Offered(c.Key); !ok || off != a {
				own, err := h.store.LeaseOf(tx, c.Key)
				if err != nil {
					return err
				}
				if own == nil || own.Addr != a {
					refusal = fmt.Errorf("%w: %v was not offered to this client", leases.ErrConflict, a)
					return nil
				}
			}
		}
		var err error
		lease, ended, eff, err = h.store.AckTx(tx, c, a, d, now)
		if err != nil {
			if errors.Is(err, leases.ErrConflict) || errors.Is(err, leases.ErrNotOurs) {
				refusal = err
				return nil // an answer (NAK), not a failure: nothing was written
			}
			return err
		}
		if offline, err = h.unbindEnded(tx, ended, offline); err != nil {
			return err
		}
		number, err = h.env.Dir.BindLeaseTx(tx, numbering.MAC(c.MAC), a, lease.Expiry, auto, now)
		return err
	})
	if err != nil {
		h.log.Error("lease commit failed", "mac", macString(c.MAC), "ipv4", a, "err", err)
		return nil, "error" // no reply: the client retransmits
	}
	if refusal != nil {
		return h.nak(req, resp, refusal.Error())
	}
	h.store.Apply(eff)
	for i, l := range ended {
		if offline[i] != "" {
			h.log.Info("number offline", "number", offline[i], "ipv4", l.Addr, "reason", "lease ended")
		}
	}
	h.log.Info("lease granted", "ipv4", a, "mac", macString(c.MAC), "hostname", c.Hostname, "expiry", lease.Expiry.Format(time.RFC3339))
	resp.YourIPAddr = a.AsSlice()
	resp.UpdateOption(dhcpv4.OptIPAddressLeaseTime(d))
	if number != "" {
		h.log.Info("number online", "number", number, "ipv4", a, "mac", macString(c.MAC), "source", "dhcp")
		resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(pol.OptNumber), []byte(number)))
		if srv := ltnpAddr(pol.LTNP, resp); srv.IsValid() {
			ip := srv.Addr().As4()
			resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(pol.OptServer),
				[]byte{ip[0], ip[1], ip[2], ip[3], byte(srv.Port() >> 8), byte(srv.Port())}))
		}
	}
	return resp, "ack"
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

func (h *Handler) release(c leases.Client, req *dhcpv4.DHCPv4) {
	a := toAddr(req.ClientIPAddr)
	if !a.IsValid() {
		return
	}
	h.end(c, a, "released", func(tx *bolt.Tx) (*leases.Lease, leases.Effects, error) {
		return h.store.ReleaseTx(tx, c, a)
	})
}

func (h *Handler) decline(c leases.Client, req *dhcpv4.DHCPv4) {
	a := toAddr(req.RequestedIPAddress())
	if !a.IsValid() {
		return
	}
	h.end(c, a, "declined", func(tx *bolt.Tx) (*leases.Lease, leases.Effects, error) {
		return h.store.DeclineTx(tx, c, a, h.env.Dir.Now())
	})
}

// end ends a lease and takes its number offline in one transaction.
func (h *Handler) end(c leases.Client, a netip.Addr, why string, f func(*bolt.Tx) (*leases.Lease, leases.Effects, error)) {
	var l *leases.Lease
	var eff leases.Effects
	var number string
	err := h.env.Writer.Do(func(tx *bolt.Tx) error {
		var err error
		number = ""
		if l, eff, err = f(tx); err != nil || l == nil {
			return err
		}
		number, err = h.env.Dir.UnbindLeaseTx(tx, numbering.MAC(l.MAC), l.Addr)
		return err
	})
	if err != nil {
		h.log.Error("lease "+why+": commit failed", "ipv4", a, "err", err)
		return
	}
	h.store.Apply(eff)
	if l == nil {
		h.log.Info("lease "+why+" ignored", "ipv4", a, "mac", macString(c.MAC), "reason", "not this client's lease")
		return
	}
	h.log.Info("lease "+why, "ipv4", a, "mac", macString(c.MAC))
	if number != "" {
		h.log.Info("number offline", "number", number, "ipv4", a, "reason", "lease "+why)
	}
}
