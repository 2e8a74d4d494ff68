package dhcpserve

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"
)

// ErrPortInUse: another process serves DHCP on the same address and
// interface (another lanteld, dnsmasq, ISC dhcpd, Kea).
var ErrPortInUse = errors.New("the DHCP port is in use by another server")

// udpConn opens the DHCP socket on addr, bound to iface when given, with
// broadcast allowed. Unlike server4.NewIPv4UDPConn it sets neither
// SO_REUSEADDR nor SO_REUSEPORT: with them a second server on the same
// interface starts as well and clients get two different offers; without
// them the second one fails with ErrPortInUse. (Sockets bound to different
// interfaces do not conflict.)
func udpConn(iface string, addr *net.UDPAddr) (*net.UDPConn, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("cannot get a UDP socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "")
	defer func() { _ = f.Close() }() // net.FilePacketConn dups the descriptor
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
		return nil, fmt.Errorf("cannot allow broadcast: %w", err)
	}
	if iface != "" {
		if err := dhcpv4.BindToInterface(fd, iface); err != nil {
			return nil, fmt.Errorf("cannot bind to interface %s: %w", iface, err)
		}
	}
	sa := unix.SockaddrInet4{Port: addr.Port}
	if addr.IP != nil {
		ip4 := addr.IP.To4()
		if ip4 == nil {
			return nil, fmt.Errorf("%s is not an IPv4 address", addr.IP)
		}
		copy(sa.Addr[:], ip4)
	}
	if err := unix.Bind(fd, &sa); err != nil {
		if errors.Is(err, unix.EADDRINUSE) {
			return nil, fmt.Errorf("%w: %s:%d%s (stop the other one: two DHCP servers on one LAN hand out different addresses)",
				ErrPortInUse, addr.IP, addr.Port, zone(iface))
		}
		return nil, fmt.Errorf("cannot bind to port %d: %w", addr.Port, err)
	}
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return nil, err
	}
	conn, ok := pc.(*net.UDPConn)
	if !ok {
		_ = pc.Close()
		return nil, errors.New("dhcpserve: not a UDP socket")
	}
	return conn, nil
}

func zone(iface string) string {
	if iface == "" {
		return ""
	}
	return " on " + iface
}
