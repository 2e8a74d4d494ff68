package lantel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/leases"
)

// Every kind maps to what the client gets on purpose: a refusal is a NAK,
// a failure silence.
func TestEveryKindHasAnAnswer(t *testing.T) {
	for _, k := range domain.Kinds() {
		a, ok := answers[k]
		if !ok {
			t.Errorf("kind %v has no answer", k)
			continue
		}
		if got := answerOf(fmt.Errorf("wrapped: %w", domain.Errorf(k, "why"))); got != a {
			t.Errorf("kind %v: %v, want %v", k, got, a)
		}
		if k.Failure() != (a == silence) {
			t.Errorf("kind %v: %v", k, a)
		}
	}
	if answerOf(errors.New("disk on fire")) != silence {
		t.Error("a failure without a kind is not silence")
	}
}

// failingSvc is the service with Discover and Ack failing with err.
type failingSvc struct {
	Service
	err error
}

func (f failingSvc) Discover(leases.Client, netip.Addr, func(netip.Addr) bool) (service.Offer, error) {
	return service.Offer{}, f.err
}

func (f failingSvc) Ack(service.AckRequest) (service.Ack, error) { return service.Ack{}, f.err }

// The plugin decides by kind: a failure (a stale node, no quorum, a
// failure without a kind) gets no reply, a refusal a NAK with its reason.
func TestAnswerByKind(t *testing.T) {
	r := newRig(t, "192.0.2.20-192.0.2.29")
	const mac = "02:00:00:00:00:01"
	req := request(t, mac, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 21))))
	for _, err := range []error{domain.Errorf(domain.Stale, "cut off"), domain.Errorf(domain.Unavailable, "no quorum"), errors.New("disk on fire")} {
		r.h.env.Svc = failingSvc{Service: r.svc, err: err}
		if out := r.do(t, discover(t, mac)); out != nil {
			t.Errorf("%v: DISCOVER answered %v", err, out.MessageType())
		}
		if out := r.do(t, req); out != nil {
			t.Errorf("%v: REQUEST answered %v", err, out.MessageType())
		}
	}
	r.h.env.Svc = failingSvc{Service: r.svc, err: domain.Errorf(domain.InUse, "taken")}
	if out := r.do(t, discover(t, mac)); out != nil {
		t.Errorf("refused DISCOVER answered %v", out.MessageType())
	}
	if out := r.do(t, req); out == nil || out.MessageType() != dhcpv4.MessageTypeNak || out.Message() != "taken" {
		t.Errorf("refused REQUEST: %v", out)
	}
}
