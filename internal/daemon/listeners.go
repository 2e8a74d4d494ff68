package daemon

import "net"

// Listener is a socket lanteld is bound to: its front, its network ("udp"
// or "tcp") and its address (the bound one: port 0 in the configuration is
// the port the system gave).
type Listener struct {
	Front string // ltnp, dhcp4, dhcp6, sip, provisioning, dns, admin, tftp
	Net   string
	Addr  string
	// Interface is the interface a DHCPv4 socket is bound to ("" if none).
	Interface string
}

// Listeners are the sockets of every front that is on, in start order:
// what lanteld -ready-file writes once Start has returned. The SIP and DNS
// fronts have a UDP and a TCP socket on the same address and port.
func (d *Daemon) Listeners() []Listener {
	var ls []Listener
	add := func(front, network string, a net.Addr) {
		if a != nil {
			ls = append(ls, Listener{Front: front, Net: network, Addr: a.String()})
		}
	}
	if d.ltnp != nil {
		ls = append(ls, Listener{Front: "ltnp", Net: "udp", Addr: d.ltnpAddr.String()})
	}
	if d.dhcp != nil {
		for _, l := range d.dhcp.Addrs() {
			ls = append(ls, Listener{Front: "dhcp4", Net: "udp", Addr: l.Addr.String(), Interface: l.Interface})
		}
	}
	if d.dhcp6 != nil {
		for _, l := range d.dhcp6.Addrs() {
			ls = append(ls, Listener{Front: "dhcp6", Net: "udp", Addr: l.Addr.String(), Interface: l.Interface})
		}
	}
	if d.sip != nil {
		a := d.sip.Addr()
		add("sip", "udp", a)
		add("sip", "tcp", a)
	}
	if d.prov != nil {
		add("provisioning", "tcp", d.prov.Addr())
	}
	if d.tftp != nil {
		add("tftp", "udp", d.tftp.Addr())
	}
	if d.dns != nil {
		a := d.dns.Addr()
		add("dns", "udp", a)
		add("dns", "tcp", a)
	}
	if d.admin != nil {
		add("admin", "tcp", d.admin.Addr())
	}
	return ls
}
