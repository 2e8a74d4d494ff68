package lantel

import "github.com/lantel/lantel/domain"

// answer is what a client gets when the service does not give it what it
// asked for.
type answer uint8

const (
	// nak: a refusal. A REQUEST is NAKed with the reason (the client
	// starts over with a DISCOVER); a DISCOVER gets no offer.
	nak answer = iota + 1
	// silence: a failure. No reply: the client retransmits, and meanwhile
	// another node of the cluster may answer it.
	silence
)

// answers maps every kind of the service's errors to what the client
// gets; a kind missing here is a bug that the package test catches. An
// error without a kind is a failure: silence.
var answers = map[domain.Kind]answer{
	domain.Invalid:         nak,
	domain.NotFound:        nak, // the address is in no pool
	domain.Offline:         nak,
	domain.Reserved:        nak,
	domain.InUse:           nak, // another client's address, or one not offered to this one
	domain.Exhausted:       nak, // no free address
	domain.Denied:          nak,
	domain.UnknownServer:   nak,
	domain.Conflict:        nak,
	domain.Unauthenticated: nak,
	// Failures: no quorum, storage, a node cut off from its cluster.
	domain.Unavailable: silence,
	domain.Stale:       silence,
}

// answerOf is what the client gets for err.
func answerOf(err error) answer {
	if e := domain.As(err); e != nil {
		if a, ok := answers[e.Kind]; ok {
			return a
		}
	}
	return silence
}
