package container

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/coreos/go-iptables/iptables"
)

// The firewall keeps containers off the control plane. For a bridge BR and subnet S, in
// chains of v9's own that the built-in chains jump to first:
//
//	filter INPUT        -i BR → V9-IN-BR
//	  V9-IN-BR          replies (ESTABLISHED,RELATED) accepted; everything else dropped:
//	                    no container reaches any port of the host on any of its addresses,
//	                    the bridge's gateway address included (API, Raft, proxy, SSH...).
//	filter FORWARD      → V9-FWD-BR
//	  V9-FWD-BR         -o BR: replies accepted, everything else dropped (nobody else opens
//	                    a connection to a container, and no container to another: with
//	                    br_netfilter, bridged traffic passes here as -i BR -o BR);
//	                    -i BR to 169.254.0.0/16 (cloud metadata) and to Network.Deny
//	                    dropped; -i BR → V9-MBR-BR; -i BR to anywhere else accepted
//	                    (outbound).
//	  V9-MBR-BR         the API, Raft and proxy ports of every member of the cluster
//	                    (FenceMembers, kept in step with the replicated node list)
//	                    dropped: a container reaches no other machine's node either.
//	nat POSTROUTING     → V9-NAT-BR: -s S ! -o BR masquerade.
//	ip6tables           INPUT and FORWARD drop everything from and to BR (containers get
//	                    no IPv6; the bridge has it turned off too).
//
// The host itself reaches the containers (OUTPUT, not FORWARD): that is how the executor's
// proxy forwards to a container's address.
var firewallMu sync.Mutex

type rule struct {
	table, chain string
	spec         []string
}

// firewallJumps returns the rules of the built-in chains that jump into bridge br's chains.
func firewallJumps(br string) []rule {
	return []rule{
		{"filter", "INPUT", []string{"-i", br, "-j", "V9-IN-" + br}},
		{"filter", "FORWARD", []string{"-j", "V9-FWD-" + br}},
		{"nat", "POSTROUTING", []string{"-j", "V9-NAT-" + br}},
	}
}

// firewall6Rules returns the IPv6 rules of bridge br.
func firewall6Rules(br string) []rule {
	return []rule{
		{"filter", "INPUT", []string{"-i", br, "-j", "DROP"}},
		{"filter", "FORWARD", []string{"-i", br, "-j", "DROP"}},
		{"filter", "FORWARD", []string{"-o", br, "-j", "DROP"}},
	}
}

// firewallRules returns the jumps into v9's chains and the rules of those chains.
func firewallRules(cfg Network) (jumps, rules []rule) {
	br := cfg.Bridge
	in, fwd, nat := "V9-IN-"+br, "V9-FWD-"+br, "V9-NAT-"+br
	est := []string{"-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"}
	jumps = firewallJumps(br)
	rules = []rule{
		{"filter", in, est},
		{"filter", in, []string{"-j", "DROP"}},
		{"filter", fwd, append([]string{"-o", br}, est...)},
		{"filter", fwd, []string{"-o", br, "-j", "DROP"}},
		{"filter", fwd, []string{"-d", "169.254.0.0/16", "-i", br, "-j", "DROP"}},
	}
	for _, p := range cfg.Deny {
		rules = append(rules, rule{"filter", fwd, []string{"-d", p.Masked().String(), "-i", br, "-j", "DROP"}})
	}
	rules = append(rules,
		rule{"filter", fwd, []string{"-i", br, "-j", membersChain(br)}},
		rule{"filter", fwd, []string{"-i", br, "-j", "ACCEPT"}},
		rule{"nat", nat, []string{"-s", cfg.Subnet.String(), "!", "-o", br, "-j", "MASQUERADE"}},
	)
	return jumps, rules
}

// installFirewall sets the kernel switches the fence needs and installs its rules. Chains
// that already hold exactly the wanted rules are left alone, so an agent restart never
// opens a gap; otherwise they are rewritten.
func installFirewall(cfg Network) error {
	firewallMu.Lock()
	defer firewallMu.Unlock()
	// Bridged traffic between containers must pass iptables' FORWARD to be dropped there.
	if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil {
		return errors.New("bridge netfilter is off: load the br_netfilter module (modprobe br_netfilter)")
	}
	for _, s := range []string{"/proc/sys/net/bridge/bridge-nf-call-iptables", "/proc/sys/net/ipv4/ip_forward"} {
		if err := os.WriteFile(s, []byte("1"), 0o644); err != nil {
			return fmt.Errorf("set %s: %w", s, err)
		}
	}
	ipt, err := iptables.NewWithProtocol(iptables.ProtocolIPv4)
	if err != nil {
		return fmt.Errorf("iptables: %w (apt-get install iptables)", err)
	}
	jumps, rules := firewallRules(cfg)
	chains := map[[2]string][][]string{}
	var order [][2]string
	for _, r := range rules {
		k := [2]string{r.table, r.chain}
		if _, ok := chains[k]; !ok {
			order = append(order, k)
		}
		chains[k] = append(chains[k], r.spec)
	}
	// The members' chain is filled by FenceMembers; a restart keeps what it holds.
	if ok, err := ipt.ChainExists("filter", membersChain(cfg.Bridge)); err != nil {
		return fmt.Errorf("iptables: %w", err)
	} else if !ok {
		if err := ipt.NewChain("filter", membersChain(cfg.Bridge)); err != nil {
			return fmt.Errorf("iptables: %w", err)
		}
	}
	for _, k := range order {
		if err := ensureChain(ipt, k[0], k[1], chains[k]); err != nil {
			return err
		}
	}
	for _, j := range jumps {
		if err := ipt.InsertUnique(j.table, j.chain, 1, j.spec...); err != nil {
			return fmt.Errorf("iptables: jump to v9's chain from %s %s: %w", j.table, j.chain, err)
		}
	}
	return installFirewall6(cfg.Bridge)
}

// ensureChain makes chain hold exactly specs, in order. The specs are written the way
// iptables -S prints them, so a chain already right compares equal and is left alone.
func ensureChain(ipt *iptables.IPTables, table, chain string, specs [][]string) error {
	want := []string{"-N " + chain}
	for _, spec := range specs {
		want = append(want, "-A "+chain+" "+strings.Join(spec, " "))
	}
	if got, err := ipt.List(table, chain); err == nil && slices.Equal(got, want) {
		return nil
	}
	if err := ipt.ClearChain(table, chain); err != nil { // creates it when missing
		return fmt.Errorf("iptables: %w", err)
	}
	for _, spec := range specs {
		if err := ipt.Append(table, chain, spec...); err != nil {
			return fmt.Errorf("iptables: %s %s %v: %w", table, chain, spec, err)
		}
	}
	return nil
}

// installFirewall6 drops all IPv6 from and to the bridge, when the host has ip6tables.
func installFirewall6(br string) error {
	ipt, err := iptables.NewWithProtocol(iptables.ProtocolIPv6)
	if err != nil {
		return nil // no ip6tables: no IPv6 firewall to add to; the bridge has IPv6 off
	}
	for _, r := range firewall6Rules(br) {
		if err := ipt.InsertUnique(r.table, r.chain, 1, r.spec...); err != nil {
			return fmt.Errorf("ip6tables: %s %s: %w", r.table, r.chain, err)
		}
	}
	return nil
}

func membersChain(br string) string { return "V9-MBR-" + br }

// RemoveFirewall deletes what v9 installed for bridge br: the jumps into its chains, the
// chains (the members' chain included) and its IPv6 rules; what is already gone is
// skipped. It is for a bridge no agent will use again (a test's, a decommissioned
// machine's): an executor's Close leaves its firewall in place, so that a restarted agent
// never opens a gap, and every rule a built-in chain holds costs each packet a check.
func RemoveFirewall(br string) error {
	firewallMu.Lock()
	defer firewallMu.Unlock()
	ipt, err := iptables.NewWithProtocol(iptables.ProtocolIPv4)
	if err != nil {
		return fmt.Errorf("iptables: %w", err)
	}
	var errs []error
	for _, j := range firewallJumps(br) {
		// No jump can lead to a chain that is gone (and iptables cannot even check for one).
		target := j.spec[len(j.spec)-1]
		ok, err := ipt.ChainExists(j.table, target)
		if err == nil && ok {
			err = ipt.DeleteIfExists(j.table, j.chain, j.spec...)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("iptables: %s %s: %w", j.table, j.chain, err))
		}
	}
	// The forward chain jumps to the members' chain: it goes first.
	for _, c := range []rule{{"filter", "V9-IN-" + br, nil}, {"filter", "V9-FWD-" + br, nil}, {"filter", membersChain(br), nil}, {"nat", "V9-NAT-" + br, nil}} {
		ok, err := ipt.ChainExists(c.table, c.chain)
		if err == nil && ok {
			err = ipt.ClearAndDeleteChain(c.table, c.chain)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("iptables: %s %s: %w", c.table, c.chain, err))
		}
	}
	if ipt6, err := iptables.NewWithProtocol(iptables.ProtocolIPv6); err == nil {
		for _, r := range firewall6Rules(br) {
			if err := ipt6.DeleteIfExists(r.table, r.chain, r.spec...); err != nil {
				errs = append(errs, fmt.Errorf("ip6tables: %s %s: %w", r.table, r.chain, err))
			}
		}
	}
	return errors.Join(errs...)
}

// fenceMembers makes the members' chain drop exactly the TCP ports addrs (IPv4) from the
// bridge; it is left alone when it already does.
func fenceMembers(br string, addrs []netip.AddrPort) error {
	firewallMu.Lock()
	defer firewallMu.Unlock()
	ipt, err := iptables.NewWithProtocol(iptables.ProtocolIPv4)
	if err != nil {
		return fmt.Errorf("iptables: %w", err)
	}
	seen := map[netip.AddrPort]bool{}
	var specs [][]string
	for _, a := range addrs {
		if !a.Addr().Unmap().Is4() || seen[a] {
			continue
		}
		seen[a] = true
		specs = append(specs, []string{"-d", a.Addr().Unmap().String() + "/32", "-i", br, "-p", "tcp", "-m", "tcp", "--dport", strconv.Itoa(int(a.Port())), "-j", "DROP"})
	}
	sort.Slice(specs, func(i, j int) bool { return strings.Join(specs[i], " ") < strings.Join(specs[j], " ") })
	return ensureChain(ipt, "filter", membersChain(br), specs)
}

// FenceMembers keeps the containers off the node ports (API, Raft, proxy) of the cluster's
// members on other machines: addrs is their full list, from the replicated node list; the
// previous list is replaced. Names that are not IPv4 addresses are skipped.
func (e *Executor) FenceMembers(addrs []netip.AddrPort) error {
	return fenceMembers(e.net.cfg.Bridge, addrs)
}
