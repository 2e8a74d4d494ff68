package tftpserver

import (
	"net/netip"
	"time"

	"github.com/lantel/lantel/internal/setup"
)

// Section is the tftp: section of lanteld's configuration file. The front
// serves the provisioning section's files, under its rule and allow list.
type Section struct {
	Listen string `yaml:"listen"` // off when empty
	// Unauthenticated acknowledges that TFTP, which has no password,
	// serves the files that provisioning.basic_auth guards over HTTP: with
	// basic_auth set, TFTP is refused unless it is true.
	Unauthenticated bool `yaml:"unauthenticated"`
	Limits          struct {
		setup.Limits       `yaml:",inline"`
		Transfers          int           `yaml:"transfers"`
		TransfersPerSource int           `yaml:"transfers_per_source"`
		TransferTimeout    time.Duration `yaml:"transfer_timeout"`
		MaxFileSize        int           `yaml:"max_file_size"`
	} `yaml:"limits"`
}

// Setup checks the section: the listen address ("" when off) and the
// limits (zero: the front's defaults; a negative rate: no bound).
func (s Section) Setup() (listen string, l Limits, err error) {
	if s.Listen == "" {
		return "", l, nil
	}
	if ap, err := netip.ParseAddrPort(s.Listen); err != nil || !ap.Addr().Unmap().Is4() {
		return "", l, setup.Errorf("listen", "%q is not IPv4:port, such as 0.0.0.0:69 (TFTP is served over IPv4; phones on IPv6 fetch over HTTP)", s.Listen)
	}
	x := s.Limits
	if l.PerSource, l.Total, err = x.Rates(); err != nil {
		return "", l, err
	}
	switch {
	case x.Transfers < 0 || x.Transfers > 100_000:
		return "", l, setup.Errorf("limits.transfers", "%d: want 1-100000 (0: the default, 64)", x.Transfers)
	case x.TransfersPerSource < 0 || x.TransfersPerSource > 1000:
		return "", l, setup.Errorf("limits.transfers_per_source", "%d: want 1-1000 (0: the default, 4)", x.TransfersPerSource)
	case x.TransferTimeout != 0 && (x.TransferTimeout < time.Second || x.TransferTimeout > 10*time.Minute):
		return "", l, setup.Errorf("limits.transfer_timeout", "%v: want 1s to 10m (0: the default, 30s)", x.TransferTimeout)
	case x.MaxFileSize < 0 || x.MaxFileSize > 64<<20:
		return "", l, setup.Errorf("limits.max_file_size", "%d: want bytes, at most 64 MiB (0: the default, 1 MiB)", x.MaxFileSize)
	}
	l.Transfers, l.TransfersPerSource, l.TransferTimeout, l.MaxFileSize = x.Transfers, x.TransfersPerSource, x.TransferTimeout, x.MaxFileSize
	return s.Listen, l, nil
}
