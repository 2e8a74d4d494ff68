package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// webdriver is a minimal W3C WebDriver client for chromedriver.
type webdriver struct {
	t       *testing.T
	base    string
	session string
}

const elementKey = "element-6066-11e4-a52e-4f735466cecf"

func (w *webdriver) call(method, path string, body any) (json.RawMessage, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, w.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("webdriver %s %s: HTTP %d: %s", method, path, resp.StatusCode, out.Value)
	}
	return out.Value, nil
}

func (w *webdriver) must(method, path string, body any) json.RawMessage {
	w.t.Helper()
	v, err := w.call(method, path, body)
	if err != nil {
		w.t.Fatal(err)
	}
	return v
}

func (w *webdriver) find(css string) (string, error) {
	v, err := w.call("POST", "/session/"+w.session+"/element", map[string]string{"using": "css selector", "value": css})
	if err != nil {
		return "", err
	}
	var el map[string]string
	if err := json.Unmarshal(v, &el); err != nil || el[elementKey] == "" {
		return "", fmt.Errorf("webdriver: no element in %s: %w", v, err)
	}
	return el[elementKey], nil
}

// click finds css and clicks it, again while the page's refresh replaces
// the element in between (a stale element reference).
func (w *webdriver) click(css string) {
	w.t.Helper()
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var el string
		if el, err = w.find(css); err != nil {
			continue
		}
		if _, err = w.call("POST", "/session/"+w.session+"/element/"+el+"/click", map[string]any{}); err == nil {
			return
		}
	}
	w.t.Fatalf("click %s: %v", css, err)
}

// The directory page in a real browser: load it, add a reservation through
// the form, see it listed (and in the API).
func TestDirectoryPageInChromium(t *testing.T) {
	needLab(t, "chromium", "chromedriver", "dhclient")
	l := NewLab(t)
	ns := l.Host("admin", "", "192.0.2.1/24")
	adminAddr := "127.0.0.1:5758" // inside the namespace: its own loopback
	cfg := l.File("lantel.yaml", fmt.Sprintf(`server4:
  listen: ["%%eth0"]
  plugins:
    - server_id: 192.0.2.1
    - lantel: lease=1h
dhcp4:
  subnets:
    - {prefix: 192.0.2.0/24, interface: eth0, ranges: [192.0.2.100-192.0.2.199]}
numbering:
  store: %s
  server_number: "1000"
  listen: 127.0.0.1:5757
  pool: ["2100-2199"]
  admin: %s
  reservations:
    - {number: "2001", name: "reception"}
`, l.Path("lantel.db"), adminAddr), 0o644)
	srv := l.LanteldArgs(ns, "-c", cfg)
	srv.Listeners.MustAddr(t, "admin tcp")
	// A static phone comes online so the page has a live row.
	if out, code := l.Exec(ns, binDir+"/lantelctl", "register", "--number", "2001", "--bind", "127.0.0.20", "-s", "127.0.0.1:5757"); code != 0 {
		t.Fatalf("register: %s", out)
	}

	// A Yealink phone (by its MAC) without a number waits in the inbox.
	const phoneMAC = "80:5e:c0:00:00:07"
	phone := l.Host("phone", phoneMAC, "")
	lease(t, l, phone, "phone", "-cf", dhclientConf(l, "phone", ""), "eth0")

	wdPort := "9515"
	drv := l.Start(ns, "chromedriver", "--port="+wdPort, "--allowed-ips=127.0.0.1")
	Eventually(t, 10*time.Second, "chromedriver", func() bool { return strings.Contains(drv.Output(), "started successfully") })
	// chromedriver and the browser run inside the namespace (lanteld's
	// admin listener is on its loopback); the test reaches chromedriver
	// through a forwarder.
	w := &webdriver{t: t}
	proxy := startProxy(t, l, ns, "127.0.0.1:"+wdPort)
	w.base = "http://" + proxy
	profile := t.TempDir()
	v := w.must("POST", "/session", map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{"binary": "/usr/bin/chromium", "args": []string{
			"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir=" + profile}},
	}}})
	var sess struct {
		SessionID string `json:"sessionId"`
	}
	json.Unmarshal(v, &sess)
	w.session = sess.SessionID
	t.Cleanup(func() { w.call("DELETE", "/session/"+w.session, nil) })

	w.must("POST", "/session/"+w.session+"/url", map[string]string{"url": "http://" + adminAddr + "/"})
	if _, err := w.find(`tr[data-number="10002001"] .online`); err != nil {
		t.Fatalf("the page does not show 2001 online: %v", err)
	}
	for field, text := range map[string]string{"number": "2042", "mac": "00:a0:24:00:00:42", "name": "Fax room"} {
		el, err := w.find(`#reserve input[name="` + field + `"]`)
		if err != nil {
			t.Fatal(err)
		}
		w.must("POST", "/session/"+w.session+"/element/"+el+"/value", map[string]string{"text": text})
	}
	w.click(`#reserve button[type="submit"]`)
	Eventually(t, 10*time.Second, "the new reservation to be listed", func() bool {
		_, err := w.find(`tr[data-number="10002042"] .reserved`)
		return err == nil
	})
	if el, err := w.find("#msg"); err == nil {
		txt := w.must("GET", "/session/"+w.session+"/element/"+el+"/text", nil)
		if !strings.Contains(string(txt), "reserved 10002042") {
			t.Errorf("form message: %s", txt)
		}
	}
	if shot := os.Getenv("LANTEL_SCREENSHOT"); shot != "" {
		var b64 string
		json.Unmarshal(w.must("GET", "/session/"+w.session+"/screenshot", nil), &b64)
		png, _ := base64.StdEncoding.DecodeString(b64)
		os.WriteFile(shot, png, 0o644)
	}
	// The API agrees.
	out, _ := l.Exec(ns, binDir+"/lantelctl", "directory", "2042", "--json", "--admin", "http://"+adminAddr)
	if !strings.Contains(out, `"name": "Fax room"`) || !strings.Contains(out, `"origin": "runtime"`) {
		t.Fatalf("API after the form: %s", out)
	}
	// Rename it in place.
	w.click(`tr[data-number="10002042"] button.edit`)
	in, err := w.find(`tr[data-number="10002042"] input.name-input`)
	if err != nil {
		t.Fatal(err)
	}
	w.must("POST", "/session/"+w.session+"/element/"+in+"/clear", map[string]any{})
	w.must("POST", "/session/"+w.session+"/element/"+in+"/value", map[string]string{"text": "Fax room 2"})
	w.click(`tr[data-number="10002042"] button.save`)
	Eventually(t, 10*time.Second, "the API to show the new name, the MAC kept", func() bool {
		out, _ := l.Exec(ns, binDir+"/lantelctl", "directory", "2042", "--json", "--admin", "http://"+adminAddr)
		return strings.Contains(out, `"name": "Fax room 2"`) && strings.Contains(out, `"mac": "00:a0:24:00:00:42"`)
	})
	// Claim the phone of the inbox.
	w.click(`tr[data-mac="` + phoneMAC + `"] button.claim`)
	Eventually(t, 10*time.Second, "the API to show the claimed phone's reservation", func() bool {
		out, _ := l.Exec(ns, binDir+"/lantelctl", "directory", "2100", "--json", "--admin", "http://"+adminAddr)
		return strings.Contains(out, `"mac": "`+phoneMAC+`"`)
	})
	if out, _ := l.Exec(ns, binDir+"/lantelctl", "inbox", "--json", "--admin", "http://"+adminAddr); strings.TrimSpace(out) != "[]" {
		t.Errorf("inbox after the claim: %s", out)
	}
	// The claimed number's history, on the page.
	w.click(`a.history[data-number="2100"]`)
	Eventually(t, 10*time.Second, "the history panel to show the claim", func() bool {
		el, err := w.find(`#history tr.event`)
		if err != nil {
			return false
		}
		txt, _ := w.call("GET", "/session/"+w.session+"/element/"+el+"/text", nil)
		return strings.Contains(string(txt), "claimed")
	})
	// Remove it through the page.
	w.click(`tr[data-number="10002042"] button.unreserve`)
	Eventually(t, 10*time.Second, "the reservation to disappear", func() bool {
		_, err := w.find(`tr[data-number="10002042"]`)
		return err != nil
	})
}

// startProxy forwards a loopback TCP port of the test's own namespace to a
// port inside ns: each connection runs this test binary inside ns as a dial
// helper (see dialHelper), which splices the connection to the target.
func startProxy(t *testing.T, l *Lab, ns, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), "LANTEL_DIAL="+target)
				cmd.Stdin, cmd.Stdout = c, c
				cmd.Run()
			}()
		}
	}()
	return ln.Addr().String()
}

// dialHelper connects stdin/stdout to the TCP address in LANTEL_DIAL.
// startProxy runs this test binary inside a namespace with that variable
// set, and TestMain calls dialHelper instead of running the tests. With
// "udp:" before the address it sends stdin as one datagram from a
// connected UDP socket (which takes answers from that address only, as a
// phone's or a resolver's does) and prints the first answer (exit 1:
// none within 3 s).
func dialHelper(target string) int {
	if addr, ok := strings.CutPrefix(target, "udp:"); ok {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return 1
		}
		b, _ := io.ReadAll(os.Stdin)
		if _, err := c.Write(b); err != nil {
			return 1
		}
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 65536)
		n, err := c.Read(buf)
		if err != nil {
			return 1
		}
		_, _ = os.Stdout.Write(buf[:n])
		return 0
	}
	c, err := net.Dial("tcp", target)
	if err != nil {
		return 1
	}
	go func() { io.Copy(c, os.Stdin); c.(*net.TCPConn).CloseWrite() }()
	io.Copy(os.Stdout, c)
	return 0
}
