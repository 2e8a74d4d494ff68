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
	c, err := sipgo.NewClient(s.ua, sipgo.WithClientHostname(local.IP.String()), sipgo.WithClientPort(local.Port))
	if err != nil {
		return 0, err
	}
	req := sip.NewRequest(sip.NOTIFY, sip.Uri{Scheme: "sip", User: number, Host: addr.String(), Port: 5060})
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
