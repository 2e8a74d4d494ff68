package dnsforward

import (
	"encoding/binary"
	"errors"

	"github.com/miekg/dns"
)

// errWire: a packed message that does not walk (never one miekg/dns
// packed).
var errWire = errors.New("dnsforward: malformed message")

// ttlOffsets returns where the TTL of each record of a packed message is
// (answer, authority, additional; not the OPT pseudo-record's, whose TTL
// field holds the extended rcode and flags), so that a reply from the
// cache is the stored bytes with its TTLs counted down in place: no unpack,
// no pack.
func ttlOffsets(w []byte) ([]uint16, error) {
	if len(w) < 12 || len(w) > 0xffff {
		return nil, errWire
	}
	qd := int(binary.BigEndian.Uint16(w[4:]))
	rrs := int(binary.BigEndian.Uint16(w[6:])) + int(binary.BigEndian.Uint16(w[8:])) + int(binary.BigEndian.Uint16(w[10:]))
	p := 12
	var err error
	for i := 0; i < qd; i++ {
		if p, err = skipName(w, p); err != nil {
			return nil, err
		}
		p += 4
	}
	offs := make([]uint16, 0, rrs)
	for i := 0; i < rrs; i++ {
		if p, err = skipName(w, p); err != nil {
			return nil, err
		}
		if p+10 > len(w) {
			return nil, errWire
		}
		if binary.BigEndian.Uint16(w[p:]) != dns.TypeOPT {
			offs = append(offs, uint16(p+4))
		}
		p += 10 + int(binary.BigEndian.Uint16(w[p+8:]))
	}
	if p > len(w) {
		return nil, errWire
	}
	return offs, nil
}

// skipName returns the offset after the name at p.
func skipName(w []byte, p int) (int, error) {
	for {
		if p >= len(w) {
			return 0, errWire
		}
		l := int(w[p])
		switch {
		case l == 0:
			return p + 1, nil
		case l&0xc0 == 0xc0: // a compression pointer ends the name
			return p + 2, nil
		case l&0xc0 != 0:
			return 0, errWire
		}
		p += 1 + l
	}
}

// nameLen is the length of the uncompressed name at p (a question's).
func nameLen(w []byte, p int) int {
	end, err := skipName(w, p)
	if err != nil || w[end-1] != 0 {
		return -1
	}
	return end - p
}
