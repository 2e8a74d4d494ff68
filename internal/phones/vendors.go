package phones

import (
	"encoding/hex"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lantel/lantel/domain"
)

// The vendor table: every vendor lantel knows, its MAC prefixes, how its
// phones name themselves in DHCP option 60, and what lantel serves it.
//
// The prefixes are the IEEE registry's MA-L assignments to the vendor (as
// published in Wireshark's manuf file built from the registry, Wireshark
// 4.0.17), 6 lowercase hex digits. A per-MAC file of a vendor goes only to
// a MAC under one of its prefixes; a MAC under none gets no per-MAC file
// (an unknown phone goes to the inbox and is given no other vendor's file).

// Vendor is a phone vendor.
type Vendor struct {
	Name string
	// OUIs are the vendor's MA-L prefixes: its per-MAC files go only to
	// MACs under them.
	OUIs []string
	// PhoneOUIs, when set, are the prefixes under which a MAC alone marks
	// a phone (the vendor makes other things under the rest of OUIs: a
	// Cisco switch is not a phone); nil: every prefix of OUIs. A device
	// that names itself a phone in option 60 is one whatever its MAC.
	PhoneOUIs []string
	// Provisioned: lantel serves the vendor's files. A vendor that is not
	// is detected (the inbox shows it) but given no file.
	Provisioned bool
	// Files are the names its phones ask for, and Phonebook the company
	// directory's (for the README and the admin's eye; the file table is
	// Builtin).
	Files     []string
	Phonebook string
	// class matches the vendor class (option 60) its phones send; its
	// first group, when it matched, is the model.
	class *regexp.Regexp
}

// Vendor names.
const (
	Yealink     = "Yealink"
	Polycom     = "Polycom"
	Grandstream = "Grandstream"
	Cisco       = "Cisco"
	Snom        = "Snom"
	Fanvil      = "Fanvil"
	Gigaset     = "Gigaset"
)

// model is the model part of a vendor class: letters, digits and . _ + -.
const model = `([A-Za-z0-9][A-Za-z0-9._+-]{0,31})`

// polycomModel has no hyphen: Polycom's class is <product>-<model>-UA/<version>.
const polycomModel = `([A-Za-z0-9][A-Za-z0-9._+]{0,31})`

// Vendors is the vendor table.
var Vendors = []Vendor{
	{Name: Yealink, OUIs: []string{"001565", "249ad8", "44dbd2", "805e0c", "805ec0", "c4fc22", "ec1da9"},
		Provisioned: true, Files: []string{"{mac}.cfg", "y0000000000{nn}.cfg"}, Phonebook: "lantel-yealink-phonebook.xml",
		class: regexp.MustCompile(`(?i)^yealink(?:[\s_-]+` + model + `)?(?:$|\s)`)}, // "yealink SIP-T46S 66.85.0.5"
	// Polycom and Poly (Polycom + Plantronics, now HP): Polycom's and
	// Poly's prefixes, 00e075 (registered to Verilink, the Polycom phone
	// prefix of switches' voice-VLAN defaults) and Plantronics' (Poly's
	// registrant; also headsets: not phones by MAC alone). HP Inc.'s
	// hundreds of prefixes name no Poly product in the registry: an HP-era
	// Poly phone is known by its option 60 ("Polycom-…", "Poly-…").
	{Name: Polycom, OUIs: []string{"000389", "0004f2", "00197f", "00237f", "0ce0e4", "385c76", "482567", "48c1ac", "64167f", "8c9b2d", "bcf292", "e422a5", "f4b688", "00e075"},
		PhoneOUIs:   []string{"0004f2", "00e075", "482567", "64167f"},
		Provisioned: true, Files: []string{"000000000000.cfg", "{mac}.cfg", "{mac}-lantel.cfg"}, Phonebook: "{mac}-directory.xml",
		class: regexp.MustCompile(`(?i)^(?:polycom|poly)(?:[A-Za-z]*-` + polycomModel + `)?(?:$|[\s/-])`)}, // "Polycom-VVX410", "PolycomVVX-VVX_410-UA/5.9.0"
	{Name: Grandstream, OUIs: []string{"000b82", "c074ad", "ec74d7"},
		Provisioned: true, Files: []string{"cfg{mac}.xml"}, Phonebook: "phonebook.xml",
		class: regexp.MustCompile(`(?i)^grandstream(?:[\s_-]+` + model + `)?(?:$|\s)`)}, // "Grandstream GXP2170 dslforum.org"
	// Cisco: all of Cisco Systems' prefixes bind the SEP file, but only
	// 00036b (the Cisco phone prefix of switches' voice-VLAN defaults) and
	// a few seen on SEP files mark a phone by MAC alone: Cisco's IP phones
	// ship under many of its 1,100-odd prefixes, which it shares with its
	// switches and routers, and every Cisco SIP phone names itself in
	// option 60 ("Cisco Systems, Inc. IP Phone CP-8841").
	{Name: Cisco, OUIs: ciscoOUIs,
		PhoneOUIs:   []string{"00036b", "001b54", "002155", "00d0ba", "a0f849"},
		Provisioned: true, Files: []string{"SEP{MAC}.cnf.xml"}, Phonebook: "lantel-cisco-directory.xml",
		class: regexp.MustCompile(`(?i)^cisco systems,? inc\.? ip phone(?:\s+` + model + `)?`)},
	{Name: Snom, OUIs: []string{"000413"},
		Provisioned: true, Files: []string{"snom{model}-{MAC}.htm"}, Phonebook: "lantel-snom-tbook.xml",
		class: regexp.MustCompile(`(?i)^snom[\s_-]*` + model + `?(?:$|[\s/])`)}, // "snom710", "snom D785"
	// Fanvil and Gigaset are detected, not provisioned: lantel has no
	// template of their formats it knows to be right.
	{Name: Fanvil, OUIs: []string{"0c383e"},
		class: regexp.MustCompile(`(?i)^fanvil(?:[\s_-]+` + model + `)?(?:$|\s)`)}, // "Fanvil X4U 2.12.1"
	// Gigaset: Gigaset Communications and its predecessor Siemens Home &
	// Office Communication Devices; 14b370 (Gigaset's Shenzhen
	// subsidiary) makes smartphones.
	{Name: Gigaset, OUIs: []string{"000b23", "0013a3", "0018d1", "002104", "14b370", "589ec6", "7c2f80"},
		PhoneOUIs: []string{"000b23", "0013a3", "0018d1", "002104", "589ec6", "7c2f80"},
		class:     regexp.MustCompile(`(?i)^gigaset(?:[\s_-]+` + model + `)?(?:$|\s)`)},
}

// ciscoOUIs are Cisco Systems' MA-L prefixes (not Meraki's, Linksys' or
// Scientific Atlanta's).
var ciscoOUIs = strings.Fields(`
	00000c 000142 000164 000196 000197 0001c7 0001c9 000217 00023d 00024a 00024b 00027d 00027e 0002b9
	0002ba 0002fc 0002fd 000331 000332 00036b 00036c 00039f 0003a0 0003e3 0003e4 0003fd 0003fe 000427
	000428 00044d 00044e 00046d 00046e 00049a 00049b 0004c0 0004c1 0004dd 0004de 000500 000501 000531
	000532 00055e 00055f 000573 000574 00059a 00059b 0005dc 0005dd 000628 00062a 000652 000653 00067c
	0006c1 0006d6 0006d7 0006f6 00070d 00070e 00074f 000750 00077d 000784 000785 0007b3 0007b4 0007eb
	0007ec 000820 000821 00082f 000830 000831 000832 00087c 00087d 0008a3 0008a4 0008c2 0008e2 0008e3
	000911 000912 000943 000944 00097b 00097c 0009b6 0009b7 0009e8 0009e9 000a41 000a42 000a8a 000a8b
	000ab7 000ab8 000af3 000af4 000b45 000b46 000b5f 000b60 000b85 000bbe 000bbf 000bfc 000bfd 000c30
	000c31 000c85 000c86 000cce 000ccf 000d28 000d29 000d65 000d66 000dbc 000dbd 000dec 000ded 000e38
	000e39 000e83 000e84 000ed6 000ed7 000f23 000f24 000f34 000f35 000f8f 000f90 000ff7 000ff8 001007
	00100b 00100d 001011 001014 00101f 001029 00102f 001054 001079 00107b 0010a6 0010f6 0010ff 001120
	001121 00115c 00115d 001192 001193 0011bb 0011bc 001200 001201 001243 001244 00127f 001280 0012d9
	0012da 001319 00131a 00135f 001360 00137f 001380 0013c3 0013c4 00141b 00141c 001469 00146a 0014a8
	0014a9 0014f1 0014f2 00152b 00152c 001562 001563 0015c6 0015c7 0015f9 0015fa 001646 001647 00169c
	00169d 0016c7 0016c8 00170e 00170f 00173b 001759 00175a 001794 001795 0017df 0017e0 001818 001819
	001873 001874 0018b9 0018ba 001906 001907 00192f 001930 001955 001956 0019a9 0019aa 0019e7 0019e8
	001a2f 001a30 001a6c 001a6d 001aa1 001aa2 001ae2 001ae3 001b0c 001b0d 001b2a 001b2b 001b53 001b54
	001b67 001b8f 001b90 001bd4 001bd5 001c0e 001c0f 001c57 001c58 001cb0 001cb1 001cf6 001cf9 001d45
	001d46 001d70 001d71 001da1 001da2 001de5 001de6 001e13 001e14 001e49 001e4a 001e79 001e7a 001ebd
	001ebe 001ef6 001ef7 001f26 001f27 001f6c 001f6d 001f9d 001f9e 001fc9 001fca 00211b 00211c 002155
	002156 0021a0 0021a1 0021d7 0021d8 00220c 00220d 002255 002256 002290 002291 0022bd 0022be 002304
	002305 002333 002334 00235d 00235e 0023ab 0023ac 0023ea 0023eb 002413 002414 002450 002451 002497
	002498 0024c3 0024c4 0024f7 0024f9 002545 002546 002583 002584 0025b4 0025b5 00260a 00260b 002651
	002652 002698 002699 0026ca 0026cb 00270c 00270d 002790 0027e3 0029c2 002a10 002a6a 002cc8 002f5c
	003019 003024 003040 003071 003078 00307b 003080 003085 003094 003096 0030a3 0030b6 0030f2 003217
	00351a 0038df 003a7d 003a98 003a99 003a9a 003a9b 003a9c 003c10 00400b 004096 0041d2 00425a 004268
	00451d 00500b 00500f 005014 00502a 00503e 005050 005053 005054 005073 005080 0050a2 0050a7 0050bd
	0050d1 0050e2 0050f0 00562b 0057d2 0059dc 005d73 005f86 006009 00602f 00603e 006047 00605c 006070
	006083 0062ec 006440 006bf1 006cbc 007278 007686 00778d 007888 007e95 0081c4 008731 008764 008a96
	008e73 00900c 009021 00902b 00905f 00906d 00906f 009086 009092 0090a6 0090ab 0090b1 0090bf 0090d9
	0090f2 009ad2 009e1e 00a289 00a2ee 00a38e 00a3d1 00a5bf 00a6ca 00a742 00aa6e 00af1f 00b04a 00b064
	00b08e 00b0c2 00b0e1 00b1e3 00b670 00b771 00b8b3 00bc60 00be75 00bf77 00c164 00c1b1 00c88b 00cae5
	00ccfc 00d006 00d058 00d063 00d079 00d090 00d097 00d0ba 00d0bb 00d0bc 00d0c0 00d0d3 00d0e4 00d0ff
	00d6fe 00d78f 00da55 00defb 00df1d 00e014 00e01e 00e034 00e04f 00e08f 00e0a3 00e0b0 00e0f7 00e0f9
	00e0fe 00e16d 00eabd 00ebd5 00eeab 00f28b 00f663 00f82c 00fcba 00fd22 00fec8 042ae2 045fb9 046273
	046c9d 0476b0 04a741 04bd97 04c5a4 04dad2 04e387 04eb40 04fe7f 081735 081ff3 0845d1 084fa9 084ff9
	087b87 0896ad 08cc68 08cca7 08d09f 08ecf5 08f3fb 0c1167 0c2724 0c6803 0c75bd 0c8525 0caf31 0cd0f8
	0cd5d3 0cd996 0cf5a4 1005ca 1006ed 108ccf 10a829 10b3c6 10b3d5 10b3d6 10bd18 10e376 10f311 10f920
	14169d 148473 14a2a0 18339d 1859f5 188090 188b45 188b9d 189c5d 18e728 18ef63 18f935 1c17d3 1c1d86
	1c6a7a 1caa07 1cd1e0 1cdea7 1cdf0f 1ce6c7 1ce85d 1cfc17 200bc5 203706 203a07 204c9e 20bbc0 20cc27
	20cfae 20dbea 2401c7 24161b 24169d 242a04 2436da 246c84 247e12 24813b 24b657 24d5e4 24d79c 24e9b3
	2834a2 285261 286b5c 286f7f 2893fe 28940f 28ac9e 28affd 28b591 28c7ce 2c01b5 2c0be9 2c1a05 2c3124
	2c3311 2c36f8 2c3ecf 2c3f38 2c4f52 2c542d 2c5741 2c5a0f 2c73a0 2c86d2 2cabeb 2cd02d 2ce38e 2cf89b
	3037a6 308bb2 30e4db 30f70d 341b2d 345da8 346288 346f90 34732d 348818 34a84e 34b883 34bdc8 34dbfd
	34ed1b 34f8e7 380e4d 381c1a 382056 3890a5 3891b7 38ed18 38fdf8 3c08f6 3c0e23 3c13cc 3c26e4 3c410e
	3c510e 3c5731 3c5ec3 3c8b7f 3cce73 3cdf1e 3cfeac 40017a 4006d5 401482 404244 405539 40a6e8 40b5c1
	40ce24 40f078 40f4ec 4403a7 442b03 44643c 448816 44add9 44ae25 44b6be 44d3ca 44e4d9 4800b3 481ba4
	482e72 487410 488002 488b0a 4891d5 48a170 4c0082 4c421e 4c4e35 4c5d3c 4c710c 4c710d 4c776d 4ca64d
	4cbc48 4ce175 4ce176 4cec0f 5000e0 500604 5006ab 500f80 5017ff 501cb0 501cbf 502fa8 503de5 504921
	5057a8 505c88 5061bf 5067ae 508789 50f722 544a00 5451de 5475d0 54781a 547c69 547fee 5486bc 5488de
	548aba 549fc6 54a274 580a20 5835d9 58569f 588b1c 588d09 58971e 5897bd 58ac78 58bc27 58bfea 58f39c
	5c3192 5c3e06 5c5015 5c5ac7 5c64f1 5c710d 5c838f 5ca48a 5ca62d 5cb12e 5ce176 5cfc66 6026aa 60735c
	60b9c0 6400f1 641225 64168d 643aea 648f3e 649ef3 64a0e7 64ae0c 64d814 64d989 64e950 64f69d 682c7b
	683b78 687161 687909 687db4 6886a7 6887c6 6899cd 689ce2 689e0b 68bc0c 68bdab 68cae4 68e59e 68efbd
	6c0309 6c03b5 6c13d5 6c2056 6c29d2 6c310e 6c410e 6c416a 6c4ef6 6c504d 6c5e3b 6c6cd3 6c710d 6c8bd3
	6c8d77 6c9989 6c9ced 6cab05 6cb2ae 6cd6e3 6cdd30 6cfa89 7001b5 700b4f 700f6a 70105c 7018a7 701f53
	703509 70617b 70695a 706bb9 706d15 706e6d 70708b 7079b3 707db9 708105 70a983 70b317 70bc48 70c9c6
	70ca9b 70d379 70da48 70db98 70df2f 70e422 70ea1a 70f096 70f35a 7411b2 7426ac 74860b 7488bb 748fc2
	74a02f 74a2e6 74ad98 74e2e7 7802b1 780cf0 7864a0 78725d 788517 78baf9 78bc1a 78da6e 78f1c6 7c0ece
	7c210d 7c210e 7c310e 7c69f6 7c95f3 7cad4f 7cad74 7cf880 80248f 80276c 802dbf 806a00 80e01d 80e86f
	843dc6 845a3e 8478ac 84802d 848a8d 84b261 84b517 84b802 84ebef 84f147 84ffc2 881dfc 8843e1 884f59
	885a92 887556 88908d 889cad 88f031 88f077 88fc5d 8c1e80 8c44a5 8c604f 8c8442 8c941f 8c9461 8cb64f
	9077ee 908855 90e95e 90eb50 940d4b 9433d8 94aef0 94d469 98a2c0 98d7e1 9c098b 9c3818 9c4e20 9c5416
	9c57ad 9c6697 9cafca 9cd57d 9ce176 a00f37 a0239f a0334f a03d6e a03d6f a0554f a09351 a0a47f a0b439
	a0bc6f a0cf5b a0e0af a0ecf9 a0f849 a4004e a40cc3 a410b6 a411bb a41875 a44c11 a4530e a45630 a46c2a
	a47806 a48873 a4934c a49bcd a4a584 a4b239 a4b439 a80c0d a84fb1 a89d21 a8b1d4 a8b456 ac2aa1 ac3a67
	ac4a56 ac4a67 ac7a56 ac7e8a aca016 acbcd9 acf2c5 acf5e6 b000b4 b02680 b07d47 b08bcf b08bd0 b08d57
	b0907e b0a651 b0aa77 b0c53c b0faeb b40216 b41489 b44c90 b4a4e3 b4a8b9 b4de31 b4e9b0 b8114b b83861
	b8621f b8a377 b8bebf bc1665 bc16f5 bc26c7 bc2ce6 bc4a56 bc5a56 bc671c bc8d1f bcc493 bcd295 bce712
	bcf1f2 bcfaeb c014fe c0255c c02c17 c0626b c064e4 c067af c07bbc c08b2a c08c60 c0f87f c40acb c4143c
	c418fc c444a0 c44606 c44d84 c46413 c471fe c47295 c47d4f c47ee0 c4ab4d c4b239 c4b36a c4b9cd c4c603
	c4f7d5 c80084 c828e5 c84709 c84c75 c8608f c88234 c884a1 c89c1d c8f9f9 cc167e cc36cf cc46d6 cc5a53
	cc6a33 cc70ed cc79d7 cc7f75 cc7f76 cc8e71 cc9070 cc9891 ccb6c8 ccd342 ccd539 ccd8c1 ccdb93 cced4d
	ccef48 d009c8 d0574c d072dc d0a5a6 d0c282 d0c789 d0d0fd d0dc2c d0e042 d0ec35 d42c44 d46624 d46a35
	d46d50 d47798 d4789b d47f35 d48cb5 d4a02a d4ad71 d4adbd d4c93c d4d748 d4e880 d4eb68 d824bd d867d9
	d8b190 dc0539 dc0b09 dc3979 dc774c dc7b94 dc8c37 dca5f4 dccec1 dceb94 dcf719 e00eda e02f6d e05fb9
	e069ba e0899d e0acf1 e0d173 e41f7b e4379f e4387e e44e2d e462c4 e4a41c e4aa5d e4c722 e4d3f1 e80462
	e80ab9 e84040 e85c0a e86549 e8b748 e8ba70 e8bce4 e8d322 e8dc6c e8eb34 e8edf3 ec01d5 ec192e ec1d8b
	ec3091 ec4476 ecbd1d ecc018 ecc882 ecce13 ece1a9 ecf40c f01d2d f02572 f02929 f04a02 f07816 f07f06
	f09e63 f0b2e5 f0d805 f0f755 f40f1b f41fc2 f44e05 f47470 f47f35 f4acc1 f4bd9e f4cfe2 f4dbe6 f4ea67
	f4ee31 f80bcb f80f6f f83918 f84f57 f866f2 f86bd9 f872ea f87a41 f87b20 f8a5c5 f8a73a f8b7e2 f8c288
	f8c650 f8e57e f8e94f fc589a fc5b39 fc9947 fcfbfb`)

var (
	byOUI   = map[string]*Vendor{} // prefix -> vendor
	phoneBy = map[string]bool{}    // prefixes that mark a phone
)

func init() {
	for i := range Vendors {
		v := &Vendors[i]
		for _, o := range v.OUIs {
			if byOUI[o] != nil {
				panic("phones: prefix " + o + " of two vendors")
			}
			byOUI[o] = v
			if v.PhoneOUIs == nil {
				phoneBy[o] = true
			}
		}
		for _, o := range v.PhoneOUIs {
			if byOUI[o] != v {
				panic("phones: phone prefix " + o + " not among the vendor's")
			}
			phoneBy[o] = true
		}
	}
}

// classMatch is what the vendors' classes say of one vendor class: the
// index in Vendors of the first that matches (-1: none) and the model.
type classMatch struct {
	vendor int
	model  string
}

// Identify is asked of every DHCP request, and a site's phones send a
// handful of vendor classes: the matches of the first maxClasses classes
// seen are kept (classes), so that the regular expressions run once per
// class, not once per request; further classes are matched each time.
var (
	classes  sync.Map // string -> classMatch
	nClasses atomic.Int32
)

const maxClasses = 256

// classOf matches vendorClass against the vendors' classes, in order.
func classOf(vendorClass string) classMatch {
	if m, ok := classes.Load(vendorClass); ok {
		return m.(classMatch)
	}
	m := classMatch{vendor: -1}
	for i := range Vendors {
		if sub := Vendors[i].class.FindStringSubmatch(vendorClass); sub != nil {
			m = classMatch{vendor: i, model: sub[1]}
			break
		}
	}
	if nClasses.Load() < maxClasses && nClasses.Add(1) <= maxClasses {
		classes.Store(strings.Clone(vendorClass), m) // the caller's string may be a packet's bytes
	}
	return m
}

func prefix(mac domain.MAC) string { return hex.EncodeToString(mac[:3]) }

// VendorByName returns the vendor named name.
func VendorByName(name string) (Vendor, bool) {
	for _, v := range Vendors {
		if v.Name == name {
			return v, true
		}
	}
	return Vendor{}, false
}

// Owns reports whether mac is under one of v's prefixes.
func (v Vendor) Owns(mac domain.MAC) bool {
	o := byOUI[prefix(mac)]
	return o != nil && o.Name == v.Name
}

// Identify names the phone of mac that sent vendorClass (DHCP option 60,
// "" if none): its vendor and, when the class names it, its model. The
// class decides (what the phone says it is); without one that matches, a
// MAC under a phone prefix does, with no model. Anything else is no phone:
// the zero Vendor.
func Identify(mac domain.MAC, vendorClass string) (Vendor, string) {
	if vendorClass != "" && domain.IsText(vendorClass) {
		if m := classOf(vendorClass); m.vendor >= 0 {
			return Vendors[m.vendor], m.model
		}
	}
	if p := prefix(mac); phoneBy[p] {
		return *byOUI[p], ""
	}
	return Vendor{}, ""
}

// VendorOf names the phone vendor of a MAC under one of its phone prefixes
// ("" for none).
func VendorOf(mac domain.MAC) string {
	v, _ := Identify(mac, "")
	return v.Name
}
