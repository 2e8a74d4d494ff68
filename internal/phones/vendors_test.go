package phones

import (
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/lantel/lantel/domain"
)

func mac(s string) domain.MAC {
	var m domain.MAC
	if _, err := hex.Decode(m[:], []byte(s)); err != nil {
		panic(err)
	}
	return m
}

func TestIdentify(t *testing.T) {
	for _, tc := range []struct {
		mac, class, vendor, model string
	}{
		// Option 60 names the vendor and the model, whatever the MAC.
		{"805ec0000001", "yealink SIP-T46S 66.85.0.5 80:5e:c0:00:00:01", Yealink, "SIP-T46S"},
		{"020000000001", "Yealink SIP-T54W", Yealink, "SIP-T54W"},
		{"805ec0000001", "yealink", Yealink, ""},
		{"0004f2000001", "Polycom-VVX410", Polycom, "VVX410"},
		{"0004f2000001", "PolycomVVX-VVX_410-UA/5.9.0.9373", Polycom, "VVX_410"},
		{"0004f2000001", "PolycomSoundPointIP-SPIP_650", Polycom, "SPIP_650"}, // option 60 in its binary form (dhcpconf.VendorText)
		{"482567000001", "PolycomVVX-VVX_450", Polycom, "VVX_450"},
		{"64167f000001", "PolycomSoundPointIP-SPIP_335-UA/4.0.1", Polycom, "SPIP_335"},
		{"020000000001", "Poly-CCX500", Polycom, "CCX500"},
		{"000b82000001", "Grandstream GXP2170 dslforum.org", Grandstream, "GXP2170"},
		{"000b82000001", "Grandstream GRP2614", Grandstream, "GRP2614"},
		{"00000c000001", "Cisco Systems, Inc. IP Phone CP-8841", Cisco, "CP-8841"},
		{"020000000001", "Cisco Systems, Inc. IP Phone CP-7941G", Cisco, "CP-7941G"},
		{"000413000001", "snom710", Snom, "710"},
		{"000413000001", "snom D785", Snom, "D785"},
		{"0c383e000001", "Fanvil X4U 2.12.1", Fanvil, "X4U"},
		{"7c2f80000001", "Gigaset N510 IP PRO", Gigaset, "N510"},
		// Without a class that names one, a phone prefix does.
		{"805ec0000001", "", Yealink, ""},
		{"44dbd2000001", "", Yealink, ""},
		{"ec1da9000001", "udhcp 1.36.1", Yealink, ""},
		{"0004f2000001", "", Polycom, ""},
		{"482567000001", "", Polycom, ""},
		{"00e075000001", "", Polycom, ""},
		{"c074ad000001", "", Grandstream, ""},
		{"00036b000001", "", Cisco, ""},
		{"000413000001", "", Snom, ""},
		{"0c383e000001", "", Fanvil, ""},
		{"589ec6000001", "", Gigaset, ""},
		// Not phones: another device of a phone vendor, a PC, a class that
		// names no phone, the binary RFC 3925 form.
		{"00000c000001", "", "", ""},         // a Cisco switch's prefix
		{"00000c000001", "ciscopnp", "", ""}, // a Cisco switch's class
		{"bcf292000001", "", "", ""},         // Plantronics: headsets
		{"14b370000001", "", "", ""},         // Gigaset's smartphones
		{"020000000001", "MSFT 5.0", "", ""},
		{"020000000001", "dhcpcd-10.0.6:Linux-6.1.0:x86_64:GenuineIntel", "", ""},
		{"020000000001", "Polytron X", "", ""},
		{"020000000001", "yealinkish", "", ""},
		{"020000000001", "\x00\x00\x0c\x91yealink", "", ""},
		{"000e08000001", "", "", ""}, // Cisco-Linksys SPA: not in the table
	} {
		// Twice: the class matched, then the class's match remembered.
		for pass := range 2 {
			v, model := Identify(mac(tc.mac), tc.class)
			if v.Name != tc.vendor || model != tc.model {
				t.Errorf("pass %d: Identify(%s, %q) = %q %q, want %q %q", pass, tc.mac, tc.class, v.Name, model, tc.vendor, tc.model)
			}
		}
	}
	if VendorOf(mac("805ec0000001")) != Yealink || VendorOf(mac("00000c000001")) != "" {
		t.Error("VendorOf")
	}
}

// Past the classes it remembers (a flood of made-up ones), Identify still
// matches each class it is given.
func TestIdentifyPastTheRememberedClasses(t *testing.T) {
	for i := range 2 * maxClasses {
		want := fmt.Sprintf("SIP-T%dW", i)
		if v, model := Identify(mac("020000000001"), "Yealink "+want); v.Name != Yealink || model != want {
			t.Fatalf("class %d: %q %q, want %q %q", i, v.Name, model, Yealink, want)
		}
	}
	if v, _ := Identify(mac("020000000001"), "Yealink SIP-T1W"); v.Name != Yealink {
		t.Fatal("a remembered class")
	}
	if n := nClasses.Load(); n != maxClasses {
		t.Fatalf("%d classes counted, want %d", n, maxClasses)
	}
}

// The table: every vendor has prefixes of 6 lowercase hex digits, no
// prefix is two vendors' (init panics otherwise), the provisioned ones
// have their files in Builtin.
func TestVendorTable(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range Vendors {
		if len(v.OUIs) == 0 || v.class == nil {
			t.Errorf("%s: no prefix or no class", v.Name)
		}
		for _, o := range v.OUIs {
			if m := mac(o + "000000"); len(o) != 6 || prefix(m) != o {
				t.Errorf("%s: prefix %q", v.Name, o)
			}
		}
		if !v.Provisioned {
			continue
		}
		for _, name := range append(v.Files, v.Phonebook) {
			found := false
			for _, f := range Builtin {
				found = found || f.Pattern == name
			}
			if !found {
				t.Errorf("%s: %s is not a built-in file", v.Name, name)
			}
		}
		seen[v.Name] = true
	}
	for _, f := range Builtin {
		if f.Vendor != "" && !seen[f.Vendor] {
			t.Errorf("file %s of vendor %q, not a provisioned vendor", f.Pattern, f.Vendor)
		}
		if f.ContentType == "" {
			t.Errorf("file %s has no Content-Type", f.Pattern)
		}
	}
	if c, _ := VendorByName(Cisco); len(c.OUIs) < 1000 {
		t.Errorf("Cisco has %d prefixes", len(c.OUIs))
	}
}
