package sipserver

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// CheckSync asks the phone at addr (SIP port 5060) to fetch its
// provisioning file again: an unsolicited NOTIFY with Event: check-sync,
// which Yealink, Polycom, Cisco, Grandstream and Snom phones act on. It
// waits up to timeout for the phone's final response and returns its
// code. The NOTIFY goes out of the front's own socket, so that the answer
// comes back to it.
func (s *Server) CheckSync(addr netip.Addr, number string, timeout time.Duration) (int, error) {
	s.mu.Lock()
	udp := s.udp
	s.mu.Unlock()
	if udp == nil {
		return 0, fmt.Errorf("sip: not listening")
	}
	local := udp.LocalAddr().(*net.UDPAddr)
	host := local.IP.String()
	if local.IP.IsUnspecified() {
		// A wildcard listen: the Via (where the phone answers) and From
		// name the address the phone reaches this server at, the one the
		// NOTIFY leaves from (as sipgoConn sends it).
		if a, ok := sourceFor(addr); ok {
			host = a.String()
		}
	}
	c, err := sipgo.NewClient(s.ua, sipgo.WithClientHostname(host), sipgo.WithClientPort(local.Port))
	if err != nil {
		return 0, err
	}
	req := sip.NewRequest(sip.NOTIFY, sip.Uri{Scheme: "sip", User: number, Host: addr.String(), Port: 5060})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "lanteld", Host: host}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(sip.NewHeader("Event", "check-sync"))
	req.AppendHeader(sip.NewHeader("Subscription-State", "terminated"))
	req.AppendHeader(sip.NewHeader("Content-Length", strconv.Itoa(0)))
	req.SetTransport("UDP")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := c.Do(ctx, req)
	if err != nil {
		return 0, err
	}
	return res.StatusCode, nil
}

// sourceFor is the local address the kernel sends to addr from (a route
// lookup: connecting a UDP socket sends nothing).
func sourceFor(addr netip.Addr) (netip.Addr, bool) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 5060)))
	if err != nil {
		return netip.Addr{}, false
	}
	defer func() { _ = c.Close() }()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), true
}
