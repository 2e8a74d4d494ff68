package udpbatch

import (
	"encoding/binary"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// A socket bound to a wildcard address ("[::]:53", "0.0.0.0:5060") on a
// host with more than one address must answer from the address each
// request was sent to: otherwise the kernel picks the reply's source by
// its routes, and a client (dig, a phone's resolver, any connected UDP
// socket) drops an answer from an address it did not ask. The socket is
// told to report each datagram's destination (IP_PKTINFO,
// IPV6_RECVPKTINFO, which on a dual-stack socket covers IPv4 too), and
// each reply names it as its source in the same control message.

// OOBSize holds the control messages of a received datagram (IPV6_PKTINFO
// and IP_PKTINFO on a dual-stack socket: 72 bytes) or of a reply.
const OOBSize = 128

// Source is a socket's destination-address reporting: family is
// unix.AF_INET or unix.AF_INET6, 0 when the socket is bound to one
// address (nothing to do: its replies leave from it).
type Source struct{ family int }

// SourceOf turns destination reporting on for conn when it is bound to a
// wildcard address (again: idempotent), and returns it.
func SourceOf(conn *net.UDPConn) Source {
	la, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok || !la.IP.IsUnspecified() {
		return Source{}
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return Source{}
	}
	var p Source
	_ = rc.Control(func(fd uintptr) {
		domain, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
		if err != nil {
			return
		}
		switch domain {
		case unix.AF_INET:
			err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		case unix.AF_INET6: // IP_PKTINFO too, for the IPv4 datagrams
			err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
			if err == nil {
				err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
			}
		default:
			return
		}
		if err == nil {
			p.family = domain
		}
	})
	return p
}

// Dst returns the local address that oob (a received datagram's control
// messages) reports the datagram came to, or the zero Addr. An IPv4
// datagram's is the local address its route names (IP_PKTINFO's
// spec_dst: a broadcast's is the interface's address), also on a
// dual-stack socket, which reports both.
func (p Source) Dst(oob []byte) netip.Addr {
	var v6 netip.Addr
	for len(oob) >= unix.SizeofCmsghdr {
		n, level, typ := cmsgHeader(oob)
		if n < unix.SizeofCmsghdr || n > len(oob) {
			break
		}
		data := oob[unix.CmsgLen(0):n]
		switch {
		case level == unix.IPPROTO_IP && typ == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }
			return netip.AddrFrom4([4]byte(data[4:8]))
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			// struct in6_pktinfo { in6_addr addr; int ifindex; }
			if a := netip.AddrFrom16([16]byte(data[:16])); !a.IsMulticast() && !a.Is4In6() {
				v6 = a // a multicast's source is the kernel's to pick
			}
		}
		oob = oob[min(len(oob), unix.CmsgSpace(n-unix.CmsgLen(0))):]
	}
	return v6
}

// On reports whether replies need a source (the socket is a wildcard's).
func (p Source) On() bool { return p.family != 0 }

// OOB writes into oob (at least OOBSize bytes) the control message that
// makes a reply leave from from, and returns it (nil when from is not
// valid or the socket is not a wildcard's).
func (p Source) OOB(oob []byte, from netip.Addr) []byte {
	if !from.IsValid() || p.family == 0 {
		return nil
	}
	clear(oob[:OOBSize])
	if p.family == unix.AF_INET {
		if !from.Unmap().Is4() {
			return nil
		}
		putCmsgHeader(oob, unix.CmsgLen(unix.SizeofInet4Pktinfo), unix.IPPROTO_IP, unix.IP_PKTINFO)
		a := from.Unmap().As4()
		copy(oob[unix.CmsgLen(0)+4:], a[:]) // spec_dst
		return oob[:unix.CmsgSpace(unix.SizeofInet4Pktinfo)]
	}
	// A dual-stack socket takes an IPv4 source as its mapped address.
	putCmsgHeader(oob, unix.CmsgLen(unix.SizeofInet6Pktinfo), unix.IPPROTO_IPV6, unix.IPV6_PKTINFO)
	a := from.As16() // an IPv4 address as its mapped form
	copy(oob[unix.CmsgLen(0):], a[:])
	binary.NativeEndian.PutUint32(oob[unix.CmsgLen(0)+16:], 0) // the route's interface
	return oob[:unix.CmsgSpace(unix.SizeofInet6Pktinfo)]
}

// cmsgHeader reads a control message's header (struct cmsghdr: its
// length, a size_t, then level and type, ints) in the machine's order.
func cmsgHeader(b []byte) (n int, level, typ int32) {
	if unix.SizeofCmsghdr == 16 {
		return int(binary.NativeEndian.Uint64(b)), int32(binary.NativeEndian.Uint32(b[8:])), int32(binary.NativeEndian.Uint32(b[12:]))
	}
	return int(binary.NativeEndian.Uint32(b)), int32(binary.NativeEndian.Uint32(b[4:])), int32(binary.NativeEndian.Uint32(b[8:]))
}

// putCmsgHeader writes a control message's header (see cmsgHeader).
func putCmsgHeader(b []byte, n int, level, typ int32) {
	if unix.SizeofCmsghdr == 16 {
		binary.NativeEndian.PutUint64(b, uint64(n))
		binary.NativeEndian.PutUint32(b[8:], uint32(level))
		binary.NativeEndian.PutUint32(b[12:], uint32(typ))
		return
	}
	binary.NativeEndian.PutUint32(b, uint32(n))
	binary.NativeEndian.PutUint32(b[4:], uint32(level))
	binary.NativeEndian.PutUint32(b[8:], uint32(typ))
}

// WriteTo sends b to to on conn (the socket p is of), from the local
// address from when the socket is a wildcard's: a reply sent later than
// its request was read (after a commit, an upstream's answer).
func (p Source) WriteTo(conn *net.UDPConn, b []byte, to *net.UDPAddr, from netip.Addr) error {
	var buf [OOBSize]byte
	_, _, err := conn.WriteMsgUDP(b, p.OOB(buf[:], from), to)
	return err
}
