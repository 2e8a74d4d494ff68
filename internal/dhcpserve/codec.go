package dhcpserve

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// The DHCPv4 codec of the packet path. It gives the chain the same
// *dhcpv4.DHCPv4 as insomniacslk/dhcp's FromBytes, NewReplyFromRequest and
// ToBytes (codec_test.go checks it, field by field and byte for byte), at a
// fraction of their allocations: a request's addresses and options are
// slices of its datagram (which the packet owns until it is answered)
// rather than a copy each; a reply is not made by dhcpv4.New (which draws a
// random transaction ID, under a context with a timer, only to overwrite
// it); and a reply is encoded straight into a buffer the sender gives back.

const (
	headerLen   = 236 // op to file, RFC 2131 section 2
	optionsAt   = headerLen + 4
	bootpMinLen = 300 // RFC 951: some relays drop shorter messages
	optAgent    = 82  // RFC 3046: last, before End
)

var magicCookie = [4]byte{99, 130, 83, 99}

var errShort = errors.New("dhcp: datagram shorter than a BOOTP header")

// messageType is d.MessageType() (option 53 when it is one byte, else
// MessageTypeNone) without the decoder the library allocates for it.
func messageType(d *dhcpv4.DHCPv4) dhcpv4.MessageType {
	if v := d.Options.Get(dhcpv4.OptionDHCPMessageType); len(v) == 1 {
		return dhcpv4.MessageType(v[0])
	}
	return dhcpv4.MessageTypeNone
}

// decode parses a DHCPv4 message as dhcpv4.FromBytes does. The message's
// addresses and option values are slices of b: b must not change while the
// message is in use.
func decode(b []byte) (*dhcpv4.DHCPv4, error) {
	return decodeInto(&dhcpv4.DHCPv4{}, b)
}

// decodeInto is decode into p, a message decoded before (a worker decodes
// every request into the same one): p's options map is emptied and kept,
// every other field is set anew. On an error p is left partly written.
func decodeInto(p *dhcpv4.DHCPv4, b []byte) (*dhcpv4.DHCPv4, error) {
	if len(b) < optionsAt {
		return nil, errShort
	}
	opts := p.Options
	if opts == nil {
		opts = make(dhcpv4.Options, 8)
	}
	clear(opts)
	*p = dhcpv4.DHCPv4{
		OpCode:     dhcpv4.OpcodeType(b[0]),
		HWType:     iana.HWType(b[1]),
		HopCount:   b[3],
		NumSeconds: uint16(b[8])<<8 | uint16(b[9]),
		Flags:      uint16(b[10])<<8 | uint16(b[11]),
	}
	copy(p.TransactionID[:], b[4:8])
	p.ClientIPAddr = net.IP(b[12:16:16])
	p.YourIPAddr = net.IP(b[16:20:20])
	p.ServerIPAddr = net.IP(b[20:24:24])
	p.GatewayIPAddr = net.IP(b[24:28:28])
	hlen := int(b[2])
	if hlen > 16 {
		hlen = 16
	}
	p.ClientHWAddr = net.HardwareAddr(b[28 : 28+hlen : 28+hlen])
	p.ServerHostName = cstring(b[44:108])
	p.BootFileName = cstring(b[108:236])
	if [4]byte(b[headerLen:optionsAt]) != magicCookie {
		return nil, fmt.Errorf("malformed DHCP packet: got magic cookie %v, want %v", b[headerLen:optionsAt], magicCookie[:])
	}
	p.Options = opts
	if err := decodeOptions(p.Options, b[optionsAt:]); err != nil {
		return nil, err
	}
	return p, nil
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// decodeOptions is dhcpv4's options parser (an End is required; an option
// that appears more than once is concatenated, RFC 3396), with the values
// slices of data when they appear once.
func decodeOptions(o dhcpv4.Options, data []byte) error {
	if len(data) == 0 {
		return nil // as dhcpv4: no options, no End needed
	}
	for i := 0; i < len(data); {
		code := data[i]
		i++
		switch code {
		case 0: // Pad
			continue
		case 255: // End
			return nil
		}
		if i >= len(data) {
			return fmt.Errorf("error collecting options: %w", io.ErrUnexpectedEOF)
		}
		n := int(data[i])
		i++
		if i+n > len(data) {
			return fmt.Errorf("error collecting options: %w", io.ErrUnexpectedEOF)
		}
		v := data[i : i+n : i+n]
		i += n
		if old, ok := o[code]; ok {
			o[code] = append(old[:len(old):len(old)], v...) // a copy: never into data
		} else if n > 0 {
			o[code] = v
		} else {
			o[code] = nil // as dhcpv4: present, empty
		}
	}
	return io.ErrUnexpectedEOF // no End
}

// newReply is dhcpv4.NewReplyFromRequest(req) without dhcpv4.New's random
// transaction ID: the reply's fields and options are the same.
func newReply(req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	return resetReply(&dhcpv4.DHCPv4{Options: make(dhcpv4.Options, 16)}, req)
}

// resetReply makes d (the last request's reply) newReply(req), keeping its
// options map and the room in it: a worker answers every request with the
// same message, and allocates no map for it (a map of 16 options was a
// sixth of the bytes lanteld allocated per DORA).
func resetReply(d *dhcpv4.DHCPv4, req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	op := dhcpv4.OpcodeBootReply
	if req.OpCode != dhcpv4.OpcodeBootRequest {
		op = dhcpv4.OpcodeBootRequest
	}
	opts := d.Options
	if opts == nil { // a worker's first reply, or a handler took the map away
		opts = make(dhcpv4.Options, 16)
	}
	clear(opts)
	*d = dhcpv4.DHCPv4{
		OpCode:        op,
		HWType:        req.HWType,
		ClientHWAddr:  req.ClientHWAddr,
		TransactionID: req.TransactionID,
		Flags:         req.Flags,
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: req.GatewayIPAddr,
		Options:       opts,
	}
	for _, code := range [...]uint8{optAgent, 61} { // relay agent information; client identifier (RFC 6842)
		if v := req.Options[code]; v != nil {
			d.Options[code] = v
		}
	}
	return d
}

// appendPacket appends d's wire form to dst, byte for byte what
// d.ToBytes() returns.
func appendPacket(dst []byte, d *dhcpv4.DHCPv4) []byte {
	start := len(dst)
	var h [optionsAt]byte
	h[0], h[1], h[2], h[3] = byte(d.OpCode), byte(d.HWType), byte(len(d.ClientHWAddr)), d.HopCount
	copy(h[4:8], d.TransactionID[:])
	h[8], h[9] = byte(d.NumSeconds>>8), byte(d.NumSeconds)
	h[10], h[11] = byte(d.Flags>>8), byte(d.Flags)
	putIP(h[12:16], d.ClientIPAddr)
	putIP(h[16:20], d.YourIPAddr)
	putIP(h[20:24], d.ServerIPAddr)
	putIP(h[24:28], d.GatewayIPAddr)
	copy(h[28:44], d.ClientHWAddr)
	copy(h[44:44+63], d.ServerHostName)
	copy(h[108:108+127], d.BootFileName)
	copy(h[headerLen:], magicCookie[:])
	dst = append(dst, h[:]...)

	// Options in ascending code order, 82 last (as dhcpv4's Marshal).
	var codes [256]uint8
	n := 0
	for c := range d.Options {
		if c == 0 || c == 255 || c == optAgent {
			continue
		}
		j := n
		for ; j > 0 && codes[j-1] > c; j-- {
			codes[j] = codes[j-1]
		}
		codes[j] = c
		n++
	}
	if _, ok := d.Options[optAgent]; ok {
		codes[n] = optAgent
		n++
	}
	for _, c := range codes[:n] {
		v := d.Options[c]
		if len(v) == 0 {
			dst = append(dst, c, 0)
			continue
		}
		for len(v) > 0 { // RFC 3396: longer than 255 bytes, the option is repeated
			k := min(len(v), 255)
			dst = append(dst, c, byte(k))
			dst = append(dst, v[:k]...)
			v = v[k:]
		}
	}
	dst = append(dst, 255)
	for len(dst)-start < bootpMinLen {
		dst = append(dst, 0)
	}
	return dst
}

func putIP(dst []byte, ip net.IP) {
	if ip4 := ip.To4(); ip4 != nil {
		copy(dst, ip4)
	}
}
