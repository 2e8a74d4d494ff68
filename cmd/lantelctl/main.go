// Command lantelctl speaks LTNP/1 to a lantel server: register, deregister
// and query numbers. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/ltnp"
)

const usage = `usage: lantelctl COMMAND [flags]   (flags may come before COMMAND too)

Commands (LTNP/1):
  register   [--number N] [--ip A] [--mac M] [--user U] [--lifetime 1h]
             [--secret S | --secret-file F]
             register this terminal; with --number the number is fixed;
             with a secret the request is signed (AUTH)
  deregister --number N [--ip A] [--mac M] [--secret S | --secret-file F]
  query      NUMBER [--forward]    the address to call; follows a REFERRAL

Common flags:
  -s, --server ADDR  the LTNP/1 server (default $LANTEL_SERVER or 127.0.0.1:5757)
  --bind ADDR        source address to send from (default: chosen by the system)
  --json             print the reply as JSON

` + adminUsage + `
Exit status: 0 on OK; 1 on any other RESULT (its name and REASON are printed),
or an OK to a signed request without a valid AUTH; 2 on a usage error; 3 when
the server did not answer.
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// commandFirst moves the command to the front when flags come before it
// (`lantelctl -s ADDR query 2001`, as `lantelctl query 2001 -s ADDR`): the
// first argument that names a command is the command. Without one, args
// are as given (the unknown command is reported).
func commandFirst(args []string) []string {
	if len(args) == 0 || !strings.HasPrefix(args[0], "-") {
		return args
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			if name := strings.TrimLeft(a, "-"); !strings.Contains(name, "=") && !boolFlags[name] {
				i++ // its value, whatever it reads
			}
			continue
		}
		if _, admin := adminCommands[a]; admin || a == "register" || a == "deregister" || a == "query" {
			return append(append([]string{a}, args[:i]...), args[i+1:]...)
		}
		return args // a word that is no command: reported as one
	}
	return args
}

// boolFlags are lantelctl's flags that take no value (commandFirst).
var boolFlags = map[string]bool{"json": true, "forward": true, "all": true, "secrets": true, "clear-secret": true, "quarantine": true}

type common struct {
	server, bind string
	json         bool
}

func (c *common) add(fs *flag.FlagSet) {
	def := os.Getenv("LANTEL_SERVER")
	if def == "" {
		def = "127.0.0.1:5757"
	}
	fs.StringVar(&c.server, "s", def, "LTNP/1 server address")
	fs.StringVar(&c.server, "server", def, "LTNP/1 server address")
	fs.StringVar(&c.bind, "bind", "", "source address")
	fs.BoolVar(&c.json, "json", false, "JSON output")
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	args = commandFirst(args)
	cmd, args := args[0], args[1:]
	if _, ok := adminCommands[cmd]; ok {
		return runAdmin(cmd, args, stdout, stderr)
	}
	fs := flag.NewFlagSet("lantelctl "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.add(fs)
	var number, ip, mac, user, secret, secretFile string
	var lifetime time.Duration
	var forward bool
	switch cmd {
	case "register", "deregister":
		fs.StringVar(&number, "number", "", "number (short or full)")
		fs.StringVar(&ip, "ip", "", "IPv4 to bind (default: the source address)")
		fs.StringVar(&mac, "mac", "", "MAC address")
		fs.StringVar(&secret, "secret", "", "the number's secret: sign the request (TIME, AUTH) and accept only a reply signed with it")
		fs.StringVar(&secretFile, "secret-file", "", "read the secret from `file` (keeps it out of the process list)")
		if cmd == "register" {
			fs.StringVar(&user, "user", "", "user ID")
			fs.DurationVar(&lifetime, "lifetime", 0, "asked lifetime (default: the server's)")
		}
	case "query":
		fs.BoolVar(&forward, "forward", false, "let the server forward the question to another server")
	default:
		fmt.Fprintf(stderr, "lantelctl: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	server, err := netip.ParseAddrPort(c.server)
	if err != nil {
		fmt.Fprintf(stderr, "lantelctl: --server %q: want IPv4:port\n", c.server)
		return 2
	}
	req := ltnp.Message{}
	switch cmd {
	case "query":
		if len(pos) != 1 {
			fmt.Fprintln(stderr, "lantelctl: query needs exactly one NUMBER")
			return 2
		}
		req.Type = ltnp.TypeQuery
		req.SetNumber(pos[0])
		if forward {
			req.Flags = ltnp.FlagForward
		}
	case "register", "deregister":
		if len(pos) == 1 && number == "" {
			number = pos[0]
		} else if len(pos) > 0 {
			fmt.Fprintf(stderr, "lantelctl: unexpected argument %q\n", pos[0])
			return 2
		}
		req.Type = ltnp.TypeRegister
		if cmd == "deregister" {
			req.Type = ltnp.TypeDeregister
			if number == "" {
				fmt.Fprintln(stderr, "lantelctl: deregister needs --number")
				return 2
			}
		}
		if number != "" {
			req.SetNumber(number)
			if cmd == "register" {
				req.SetMode(1)
			}
		} else if cmd == "register" {
			req.SetMode(0)
		}
		if mac != "" {
			m, err := domain.ParseMAC(mac)
			if err != nil {
				fmt.Fprintf(stderr, "lantelctl: --mac: %v\n", err)
				return 2
			}
			req.SetMAC(m)
		}
		if user != "" {
			req.SetUserID(user)
		}
		if lifetime > 0 {
			req.SetLifetime(uint32(lifetime / time.Second))
		}
	}
	conn, err := listen(c.bind)
	if err != nil {
		fmt.Fprintf(stderr, "lantelctl: %v\n", err)
		return 2
	}
	if req.Type != ltnp.TypeQuery {
		a := netip.Addr{}
		if ip != "" {
			if a, err = netip.ParseAddr(ip); err != nil || !a.Is4() {
				fmt.Fprintf(stderr, "lantelctl: --ip %q is not IPv4\n", ip)
				return 2
			}
		} else if a, err = sourceFor(conn, server); err != nil {
			fmt.Fprintf(stderr, "lantelctl: %v\n", err)
			return 2
		}
		req.SetIPv4(a)
	}
	if secretFile != "" {
		b, err := os.ReadFile(secretFile)
		if err != nil {
			fmt.Fprintf(stderr, "lantelctl: --secret-file: %v\n", err)
			return 2
		}
		secret = strings.TrimRight(string(b), "\r\n")
	}
	var key []byte
	if secret != "" {
		key = []byte(secret)
	}
	cl := ltnp.NewClient(conn)
	defer func() { _ = cl.Close() }()
	reply, err := cl.DoSigned(context.Background(), server, &req, key)
	for hops := 0; err == nil && req.Type == ltnp.TypeQuery && reply.Result == ltnp.ResultReferral && hops < ltnp.MaxHops; hops++ {
		if !c.json {
			fmt.Fprintf(stderr, "referral: %s belongs to server %s at %s\n", reply.Number, reply.ServerNumber, reply.ServerAddr)
		}
		server = reply.ServerAddr
		reply, err = cl.Do(context.Background(), server, &req)
	}
	if err != nil {
		if errors.Is(err, ltnp.ErrTimeout) {
			fmt.Fprintf(stderr, "lantelctl: %v\n", err)
			return 3
		}
		if errors.Is(err, ltnp.ErrUnsigned) {
			fmt.Fprintf(stderr, "lantelctl: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "lantelctl: %v\n", err)
		return 2
	}
	print(stdout, &reply, c.json)
	if reply.Result != ltnp.ResultOK {
		return 1
	}
	return 0
}

func listen(bind string) (*net.UDPConn, error) {
	la := &net.UDPAddr{}
	if bind != "" {
		a, err := netip.ParseAddr(bind)
		if err != nil {
			return nil, fmt.Errorf("--bind %q: %w", bind, err)
		}
		la = net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 0))
	}
	return net.ListenUDP("udp4", la)
}

// sourceFor returns the address the system sends from towards server.
func sourceFor(conn *net.UDPConn, server netip.AddrPort) (netip.Addr, error) {
	if a := conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr(); !a.IsUnspecified() {
		return a.Unmap(), nil
	}
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		return netip.Addr{}, err
	}
	defer func() { _ = c.Close() }()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

type jsonReply struct {
	Type          string `json:"type"`
	Result        string `json:"result"`
	Reason        string `json:"reason,omitempty"`
	Number        string `json:"number,omitempty"`
	IPv4          string `json:"ipv4,omitempty"`
	Lifetime      *int   `json:"lifetime,omitempty"`
	ServerNumber  string `json:"server_number,omitempty"`
	ServerAddress string `json:"server_address,omitempty"`
}

func print(w io.Writer, r *ltnp.Message, asJSON bool) {
	if asJSON {
		j := jsonReply{Type: r.Type.String(), Result: r.Result.String(), Reason: r.Reason, Number: r.Number,
			ServerNumber: r.ServerNumber}
		if r.Has(ltnp.AttrIPv4) {
			j.IPv4 = r.IPv4.String()
		}
		if r.Has(ltnp.AttrLifetime) {
			l := int(r.Lifetime)
			j.Lifetime = &l
		}
		if r.Has(ltnp.AttrServerAddress) {
			j.ServerAddress = r.ServerAddr.String()
		}
		e := json.NewEncoder(w)
		e.Encode(j)
		return
	}
	var b strings.Builder
	b.WriteString(r.Result.String())
	if r.Number != "" {
		b.WriteString(" " + r.Number)
	}
	if r.Has(ltnp.AttrIPv4) {
		b.WriteString(" " + r.IPv4.String())
	}
	if r.Has(ltnp.AttrLifetime) {
		fmt.Fprintf(&b, " lifetime %s", time.Duration(r.Lifetime)*time.Second)
	}
	if r.Has(ltnp.AttrServerNumber) && r.Type != ltnp.TypeRegisterReply || r.Result == ltnp.ResultReferral {
		fmt.Fprintf(&b, " server %s", r.ServerNumber)
	}
	if r.Has(ltnp.AttrServerAddress) {
		fmt.Fprintf(&b, " at %s", r.ServerAddr)
	}
	if r.Reason != "" {
		b.WriteString(": " + r.Reason)
	}
	fmt.Fprintln(w, b.String())
}

// parseInterspersed parses flags that may come before, between or after the
// positional arguments ("query 2001 --json") and returns the positionals.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
