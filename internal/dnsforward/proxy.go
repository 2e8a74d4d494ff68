package dnsforward

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// proxy is one upstream: its address, miekg/dns's clients to it (a new
// socket, so a new source port, per query: an answer is matched by port,
// ID and question), and its health.
type proxy struct {
	addr     string
	timeout  time.Duration
	udp, tcp *dns.Client
	health   health
}

func newProxy(addr netip.AddrPort, timeout time.Duration) *proxy {
	return &proxy{addr: addr.String(), timeout: timeout,
		udp: &dns.Client{Net: "udp", Timeout: timeout, UDPSize: dns.MinMsgSize},
		tcp: &dns.Client{Net: "tcp", Timeout: timeout}}
}

// errMismatch: an answer to another question (spoofed, or a broken
// upstream).
var errMismatch = errors.New("answer does not match the question")

// exchange asks the upstream m over UDP, and again over TCP when the
// answer is truncated; each within the proxy's timeout.
func (p *proxy) exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	r, err := p.once(ctx, p.udp, m)
	if err == nil && r.Truncated {
		r, err = p.once(ctx, p.tcp, m)
	}
	return r, err
}

func (p *proxy) once(ctx context.Context, c *dns.Client, m *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	r, _, err := c.ExchangeContext(ctx, m, p.addr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", c.Net, p.addr, err)
	}
	if r.Response && r.Opcode == m.Opcode && len(r.Question) == 0 && len(r.Answer) == 0 &&
		r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		// A refusal or failure without the question section (unbound's
		// access-control REFUSED): the upstream's answer to this query
		// (miekg/dns matched its port and ID), passed over as any
		// REFUSED or SERVFAIL is, not held against the upstream.
		r.Question = m.Question
		return r, nil
	}
	if !r.Response || r.Opcode != m.Opcode || len(r.Question) != 1 || !sameQuestion(r.Question[0], m.Question[0]) {
		return nil, fmt.Errorf("%s %s: %w", c.Net, p.addr, errMismatch)
	}
	return r, nil
}

func sameQuestion(a, b dns.Question) bool {
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}
