package config

import (
	"crypto/sha256"
	"fmt"

	"github.com/lantel/lantel/internal/dhcpconf"
	"go.yaml.in/yaml/v3"
)

// parseDHCP6 reads the DHCPv6 part: CoreDHCP's server6 section (left to
// CoreDHCP, checked by the daemon) and lantel's dhcp6 section (subnets,
// classes, hosts, options: dhcpconf.Parse6), which needs server6 and which
// server6 needs (the allocator's ranges are its subnets').
func parseDHCP6(f *File, c *Config, fail func(key, format string, args ...any) error) error {
	c.HasDHCP6 = !f.Server6.IsZero()
	switch {
	case c.HasDHCP6 && f.DHCP6.IsZero():
		return fail("dhcp6", "is required with server6 (the subnets and their IA_NA ranges)")
	case !c.HasDHCP6 && !f.DHCP6.IsZero():
		return fail("dhcp6", "needs a server6 section (the DHCPv6 server's listen addresses and plugins)")
	case !c.HasDHCP6:
		c.DHCP6 = &dhcpconf.Policy6{}
		return nil
	}
	b, _ := yaml.Marshal(&f.Server6)
	d, _ := yaml.Marshal(&f.DHCP6)
	c.Server6 = fmt.Sprintf("%x", sha256.Sum256(append(b, d...)))
	var err error
	if c.DHCP6, err = dhcpconf.Parse6(&f.DHCP6); err != nil {
		return dhcpError(c.File, err)
	}
	return nil
}
