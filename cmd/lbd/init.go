package main

// `lbd init`: a first configuration written after looking at the host.

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"lbd/config"
)

// hostFacts is what init learns from the host.
type hostFacts struct {
	Interface string     // the interface of the IPv4 default route
	Address   netip.Addr // its first IPv4 address
}

// defaultRouteInterface reads /proc/net/route's format: the interface of
// the first route with destination 0.0.0.0 and mask 0.
func defaultRouteInterface(r io.Reader) string {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 8 && f[1] == "00000000" && f[7] == "00000000" {
			return f[0]
		}
	}
	return ""
}

func lookAtHost() hostFacts {
	var h hostFacts
	if f, err := os.Open("/proc/net/route"); err == nil {
		h.Interface = defaultRouteInterface(f)
		f.Close()
	}
	if h.Interface == "" {
		return h
	}
	if ifi, err := net.InterfaceByName(h.Interface); err == nil {
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
				h.Address = p.Addr()
				break
			}
		}
	}
	return h
}

func runInit(args []string, stdin io.Reader, stdout, stderr io.Writer, host hostFacts) int {
	fset := flag.NewFlagSet("lbd init", flag.ContinueOnError)
	fset.SetOutput(stderr)
	path := fset.String("config", defaultConfig, "configuration `file` to create (refused when it holds settings)")
	iface := fset.String("interface", host.Interface, "public `interface` for the VIP and VRRP (default: the default route's)")
	vip := fset.String("vip", "", "virtual IP `address` clients connect to (asked on a terminal)")
	port := fset.Int("port", 80, "service `port`")
	proto := fset.String("protocol", "tcp", "tcp or udp")
	reals := fset.String("real", "", "real servers: comma-separated `addresses` (asked on a terminal)")
	noVRRP := fset.Bool("no-vrrp", false, "a single director: no VRRP with a backup")
	vrid := fset.Int("vrid", 1+rand.IntN(255), "VRRP router id, the same on both directors and unique on the segment (default: random)")
	priority := fset.Int("priority", 150, "VRRP priority: give the backup director a lower one (e.g. 100)")
	fset.Usage = func() {
		fmt.Fprintf(stderr, "usage: lbd init [-config FILE] [-vip ADDR] [-real ADDR,ADDR...] [-port N] [-interface IF] [-vrid N] [-priority N] [-no-vrrp]\n\n"+
			"Writes a starter configuration for this host: one virtual service on the\nVIP with its real servers checked by TCP connect, and VRRP for a backup\ndirector. Missing answers are asked on a terminal.\n\nflags:\n")
		fset.PrintDefaults()
	}
	if code, done := parseAdminFlags(fset, args, stderr); done {
		return code
	}
	if msg := existingConfig(*path); msg != "" {
		fmt.Fprintf(stderr, "lbd init: %s\n", msg)
		return 1
	}
	tty := false
	if f, ok := stdin.(*os.File); ok && isTerminal(f) {
		tty = true
	}
	in := bufio.NewReader(stdin)
	ask := func(prompt, def string) string {
		if !tty {
			return def
		}
		if def != "" {
			prompt += " [" + def + "]"
		}
		fmt.Fprint(stderr, prompt+": ")
		line, _ := in.ReadString('\n')
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
		return def
	}
	if *vip == "" {
		*vip = ask("Virtual IP address (VIP) clients connect to", "")
	}
	if *reals == "" {
		*reals = ask("Real servers (comma-separated addresses)", "")
	}
	*iface = ask("Public interface", *iface)
	if *vip == "" || *reals == "" || *iface == "" {
		fmt.Fprintln(stderr, "lbd init: need -vip, -real and an interface (none has the default route); nothing written")
		return 2
	}

	c := &config.Config{Global: config.NewGlobal(), Path: *path}
	c.Global.Interface = *iface
	vs := config.NewVirtualServer()
	vs.Name, vs.VIP, vs.Port, vs.Protocol = "service1", *vip, *port, *proto
	vs.HealthCheck = config.NewHealthCheck("tcp")
	if *proto == "udp" {
		vs.HealthCheck = nil // a udp check needs a payload: the operator chooses one
	}
	for i, a := range strings.Split(*reals, ",") {
		rs := config.NewRealServer()
		rs.Name, rs.Address = "rs"+strconv.Itoa(i+1), strings.TrimSpace(a)
		vs.RealServers = append(vs.RealServers, *rs)
	}
	c.VirtualServers = []config.VirtualServer{*vs}
	if !*noVRRP {
		v := config.NewVRRP()
		v.VRID, v.Priority = *vrid, *priority
		c.VRRP = v
	}
	_, data, err := config.Normalize(c)
	if err != nil {
		printConfigError(stderr, err)
		fmt.Fprintln(stderr, "lbd init: nothing written")
		return 1
	}
	if err := config.WriteFileAtomic(*path, data, 0o600); err != nil {
		fmt.Fprintf(stderr, "lbd init: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s: service %s:%d/%s with %d real server(s) on %s", *path, *vip, *port, *proto, len(vs.RealServers), *iface)
	if c.VRRP != nil {
		fmt.Fprintf(stdout, ", VRRP vrid %d priority %d", *vrid, *priority)
	}
	fmt.Fprintf(stdout, "\nnext: lbd passwd -config %s; systemctl start lbd; open http://%s:3636\n", *path, hostOr(host.Address, *iface))
	if c.VRRP != nil {
		fmt.Fprintf(stdout, "backup director: lbd init -vrid %d -priority 100 with the same VIP and real servers\n", *vrid)
	}
	return 0
}

func hostOr(a netip.Addr, iface string) string {
	if a.IsValid() {
		return a.String()
	}
	return "<address of " + iface + ">"
}

// existingConfig refuses to overwrite a file with settings; a missing file
// or one with only comments (the package's placeholder) is fine.
func existingConfig(path string) string {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		return err.Error()
	}
	for _, l := range bytes.Split(data, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 && l[0] != '#' {
			return path + " already holds a configuration; not replaced (remove it first, or edit it)"
		}
	}
	return ""
}
