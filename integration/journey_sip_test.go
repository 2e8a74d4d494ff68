package integration

// The office journey's SIP: sipp as each phone's SIP stack (register with
// the provisioned account, answer a call, call by number following the
// 302), scenarios in testdata/journey.

import (
	"fmt"
	"os"
	"strings"
	"time"
)

const jSIPServer = "192.0.2.1:5060"

// jTransport is sipp's -t for one socket and the Contact's parameter.
func jTransport(tcp bool) (flag, param string) {
	if tcp {
		return "t1", "tcp"
	}
	return "u1", "udp"
}

// sipp runs a scenario in ns and returns its exit status, what it printed
// and the SIP messages it traced.
func (j *journey) sipp(ns, tag string, limit time.Duration, args ...string) (code int, out, msgs string) {
	msgFile := j.l.Path(tag + ".msg")
	errFile := j.l.Path(tag + ".err")
	_ = os.Remove(msgFile)
	remote := args[len(args)-1]
	full := append([]string{"sipp"}, args[:len(args)-1]...)
	full = append(full, "-m", "1", "-nostdin", "-timeout", fmt.Sprintf("%ds", int(limit/time.Second)),
		"-timeout_error", "-trace_msg", "-message_file", msgFile, "-trace_err", "-error_file", errFile, remote)
	out, code, err := jExecNS(ns, limit+5*time.Second, full...)
	if err != nil {
		out += "\n" + err.Error()
	}
	b, _ := os.ReadFile(msgFile)
	return code, out, string(b)
}

// register registers the phone with the account read from its file.
func (j *journey) register(p *jPhone, run int) error {
	tflag, tparam := jTransport(p.TCP)
	a := p.account
	code, out, msgs := j.sipp(p.ns, fmt.Sprintf("%s-run%d-register", p.Name, run), 10*time.Second,
		"-sf", "testdata/journey/register.xml", "-t", tflag, "-i", p.lease.IP, "-p", "5060",
		"-s", a.User, "-au", a.AuthUser, "-ap", a.Password, "-key", "tparam", tparam,
		fmt.Sprintf("%s:%d", a.Server, a.Port))
	if code != 0 {
		return fmt.Errorf("sipp REGISTER (%s) as %s from %s: exit %d\n%s\nmessages:\n%s", tparam, a.User, p.lease.IP, code,
			jTail(out, 8), jTail(jResponses(msgs), 10))
	}
	return nil
}

// jResponses keeps the status lines and reasons of a message trace.
func jResponses(msgs string) string {
	var out []string
	for _, line := range strings.Split(msgs, "\n") {
		if strings.HasPrefix(line, "SIP/2.0 ") || strings.HasPrefix(line, "REGISTER ") || strings.HasPrefix(line, "INVITE ") ||
			strings.HasPrefix(strings.ToLower(line), "contact:") || strings.HasPrefix(strings.ToLower(line), "www-authenticate:") {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return strings.Join(out, "\n")
}

// contact is the Contact the phone registered.
func (p *jPhone) contact() string {
	_, tparam := jTransport(p.TCP)
	return fmt.Sprintf("sip:%s@%s:5060;transport=%s", p.account.User, p.lease.IP, tparam)
}

// answerer starts the phone's SIP stack to take one call.
func (j *journey) answerer(p *jPhone, run int) *Proc {
	tflag, tparam := jTransport(p.TCP)
	tag := fmt.Sprintf("%s-run%d-answer", p.Name, run)
	return j.l.Start(p.ns, "sipp", "-sf", "testdata/journey/answer.xml", "-t", tflag, "-i", p.lease.IP, "-p", "5060",
		"-key", "tparam", tparam, "-m", "1", "-nostdin", "-timeout", "25s", "-timeout_error",
		"-trace_msg", "-message_file", j.l.Path(tag+".msg"), "-trace_err", "-error_file", j.l.Path(tag+".err"))
}

// call has caller dial callee's number (dial: short or full) at lanteld
// and follow the 302 to the callee, over the transport of the callee's
// Contact; it checks the 302 carried that Contact.
func (j *journey) call(caller, callee *jPhone, dial string, run int) error {
	tflag, tparam := jTransport(callee.TCP)
	args := []string{"-sf", "testdata/journey/call.xml", "-t", tflag}
	if callee.TCP {
		// sipp changes a TCP destination (setdest) only with a socket per call.
		args = []string{"-sf", "testdata/journey/call.xml", "-t", "tn", "-max_socket", "16"}
	}
	tag := fmt.Sprintf("%s-run%d-calls-%s", caller.Name, run, dial)
	code, out, msgs := j.sipp(caller.ns, tag, 15*time.Second, append(args, "-i", caller.lease.IP, "-p", "5070",
		"-s", dial, "-key", "caller", caller.number, "-key", "tparam", tparam, jSIPServer)...)
	got := contactOf302(msgs)
	want := callee.contact()
	if code != 0 {
		return fmt.Errorf("%s calls %s (%s, %s): exit %d; the 302's Contact %q (want %s)\n%s\nmessages:\n%s", caller.Name, dial, callee.Name,
			tparam, code, got, want, jTail(out, 8), jTail(jResponses(msgs), 12))
	}
	if !strings.Contains(got, want) {
		return fmt.Errorf("%s calls %s: the 302's Contact is %q, want the registered <%s>", caller.Name, dial, got, want)
	}
	return nil
}

// contactOf302 is the Contact header of the first 302 in a sipp trace.
func contactOf302(msgs string) string {
	in302 := false
	for _, line := range strings.Split(msgs, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "SIP/2.0 ") {
			in302 = strings.HasPrefix(line, "SIP/2.0 302")
			continue
		}
		l := strings.ToLower(line)
		if in302 && (strings.HasPrefix(l, "contact:") || strings.HasPrefix(l, "m:")) {
			_, v, _ := strings.Cut(line, ":")
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// offlineBySIP reports whether an INVITE to number from ns gets 480.
func (j *journey) offlineBySIP(ns, ip, number, tag string) (bool, string) {
	code, out, msgs := j.sipp(ns, tag, 3*time.Second, "-sf", "testdata/journey/offline.xml", "-i", ip, "-p", "5080",
		"-s", number, jSIPServer)
	return code == 0, jTail(out, 4) + "\n" + jTail(jResponses(msgs), 4)
}
