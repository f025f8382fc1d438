"""The fibre between two gateways: one network namespace per line system.

A real DCI wavelength is a transceiver at each gateway and light in a fibre between them.
Here each wavelength is

    gateway A port <-veth-> [fibre namespace: end a  ==nft fwd==  end b] <-veth-> gateway B port

so that a cut is what a cut is: the middle ends go down inside the fibre namespace and both
gateways see carrier loss while their ports stay administratively up (open-kilda's
"a-switch" idea). The two middle ends are joined by nftables `fwd` in the netdev ingress
hook, one chain per direction; a gray failure or a loss probability is a rule placed before
the `fwd` in those chains, so faults and forwarding live in one table per line system.
Shaping (htb) stays on the gateway ports, where Mininet puts it.

Names (all `dl…`, at most 15 characters): the namespace of the L-th line system of the
file is `dlfibre<L>`; wavelength k of it has middle ends `dl<L>w<k>a` (facing the gateway
at the link's `a` site) and `dl<L>w<k>b`, and nft chains `w<k>a` / `w<k>b` (traffic that
enters from that end) in table `netdev dlfibre`.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from ..fabric.model import Fabric
from ..names import NAME_PREFIX
from .shaping import ShapedLink

NFT_TABLE = "dlfibre"
NAMESPACE_PREFIX = f"{NAME_PREFIX}fibre"


@dataclass(frozen=True)
class WavelengthEnds:
    """Where one wavelength's light runs: its fibre namespace and middle ends."""

    wavelength: str          # e.g. dc1-dc2-a.w1
    line_system: str         # e.g. dc1-dc2-a
    namespace: str           # e.g. dlfibre1
    end_a: str               # middle end facing the gateway at site a, e.g. dl1w1a
    end_b: str
    chain_a: str             # nft chain for traffic entering at end a (going a -> b)
    chain_b: str
    site_a: str
    site_b: str

    def end_of(self, site: str) -> str:
        if site == self.site_a:
            return self.end_a
        if site == self.site_b:
            return self.end_b
        raise ValueError(f"wavelength {self.wavelength} does not end at site {site!r}; "
                         f"its ends are {self.site_a} and {self.site_b}")


def namespace_name(line_index: int, prefix: str = NAMESPACE_PREFIX) -> str:
    return f"{prefix}{line_index}"


def fibre_plan(fabric: Fabric, prefix: str = NAME_PREFIX) -> dict[str, WavelengthEnds]:
    """Wavelength name -> its fibre ends, for every wavelength of the fabric (pure)."""
    index = {d.name: i for i, d in enumerate(fabric.spec.dci_links, start=1)}
    seen: dict[str, int] = {}
    plan = {}
    for link in fabric.wavelengths():
        line = index[link.line_system]
        k = seen[link.line_system] = seen.get(link.line_system, 0) + 1
        plan[link.name] = WavelengthEnds(
            link.name, link.line_system, namespace_name(line, f"{prefix}fibre"),
            f"{prefix}{line}w{k}a", f"{prefix}{line}w{k}b", f"w{k}a", f"w{k}b",
            link.site_a, link.site_b)
    return plan


def namespaces(plan: dict[str, WavelengthEnds]) -> list[str]:
    return sorted({ends.namespace for ends in plan.values()})


# -- kernel operations -----------------------------------------------------------------

class FibreError(RuntimeError):
    pass


def run(*cmd: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=20)
    if check and done.returncode != 0:
        raise FibreError(f"`{' '.join(cmd)}` failed: {done.stderr.strip() or done.stdout.strip()}")
    return done


def in_ns(namespace: str, *cmd: str, stdin: str | None = None, check: bool = True):
    return run("ip", "netns", "exec", namespace, *cmd, stdin=stdin, check=check)


def create_namespace(namespace: str) -> None:
    """An empty fibre namespace with IPv6 off (its ends must send nothing of their own)."""
    run("ip", "netns", "add", namespace)
    for key in ("all", "default"):
        in_ns(namespace, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1")
    in_ns(namespace, "nft", f"add table netdev {NFT_TABLE}")


def delete_namespace(namespace: str) -> None:
    """Deleting the namespace deletes its middle ends, hence the gateway ends of the pairs."""
    run("ip", "netns", "delete", namespace, check=False)


def chain_rules(into: str, gray: bool, loss_per_mille: int) -> list[str]:
    """The rules of one direction's chain, in order (pure)."""
    rules = []     # counters: what a fault dropped shows in `nft list table netdev dlfibre`
    if gray:
        rules.append("counter drop")
    elif loss_per_mille > 0:
        rules.append(f"numgen random mod 1000 < {min(1000, loss_per_mille)} counter drop")
    rules.append(f'fwd to "{into}"')
    return rules


def chains_script(ends: WavelengthEnds, gray: bool = False, loss_per_mille: int = 0,
                  create: bool = False) -> str:
    """An nft script that (re)writes both chains of a wavelength atomically."""
    lines = []
    for chain, device, into in ((ends.chain_a, ends.end_a, ends.end_b),
                                (ends.chain_b, ends.end_b, ends.end_a)):
        if create:
            lines.append(f'add chain netdev {NFT_TABLE} {chain} {{ type filter hook ingress '
                         f'device "{device}" priority 0; policy accept; }}')
        lines.append(f"flush chain netdev {NFT_TABLE} {chain}")
        lines += [f"add rule netdev {NFT_TABLE} {chain} {rule}"
                  for rule in chain_rules(into, gray, loss_per_mille)]
    return "\n".join(lines) + "\n"


def connect(ends: WavelengthEnds, gateway_a_port: str, gateway_b_port: str) -> None:
    """Create both veth pairs of a wavelength, light them, and join the middle ends."""
    for gw_port, mid in ((gateway_a_port, ends.end_a), (gateway_b_port, ends.end_b)):
        run("ip", "link", "add", gw_port, "type", "veth", "peer", "name", mid,
            "netns", ends.namespace)
        in_ns(ends.namespace, "ip", "link", "set", "dev", mid, "up")
    in_ns(ends.namespace, "nft", "-f", "-", stdin=chains_script(ends, create=True))


def set_light(ends: WavelengthEnds, end_a: bool, end_b: bool) -> None:
    """Light on (up) or off (down) at each middle end; the gateway across a dark middle end
    loses carrier, its port staying administratively up."""
    for mid, lit in ((ends.end_a, end_a), (ends.end_b, end_b)):
        in_ns(ends.namespace, "ip", "link", "set", "dev", mid, "up" if lit else "down")


def set_drops(ends: WavelengthEnds, gray: bool, loss_per_mille: int) -> None:
    in_ns(ends.namespace, "nft", "-f", "-", stdin=chains_script(ends, gray, loss_per_mille))


def apply(changes: list[tuple[WavelengthEnds, bool, bool, bool, int]]) -> None:
    """Set many wavelengths at once: (ends, light_a, light_b, gray, loss_per_mille) each;
    a light of None leaves that end as it is, a gray of None leaves the drop rules.
    One `ip -batch` and one nft transaction per fibre namespace, so a line system's
    wavelengths go dark together, as in a real cut, not one subprocess apart."""
    by_ns: dict[str, list] = {}
    for change in changes:
        by_ns.setdefault(change[0].namespace, []).append(change)
    for namespace, items in by_ns.items():
        rules = "".join(chains_script(e, gray, loss) for e, _a, _b, gray, loss in items
                        if gray is not None)
        if rules:
            in_ns(namespace, "nft", "-f", "-", stdin=rules)
        links = "".join(f"link set dev {mid} {'up' if lit else 'down'}\n"
                        for e, a, b, _g, _l in items for mid, lit in ((e.end_a, a), (e.end_b, b))
                        if lit is not None)
        if links:
            in_ns(namespace, "ip", "-batch", "-", stdin=links)


def link_flags(namespace: str | None, device: str) -> dict[str, bool]:
    """The kernel's view of one interface: admin up, carrier (lower up), operstate up."""
    cmd = ("ip", "-o", "link", "show", "dev", device)
    out = (in_ns(namespace, *cmd) if namespace else run(*cmd)).stdout
    flags = out.split("<", 1)[1].split(">", 1)[0].split(",")
    state = out.split(" state ", 1)[1].split()[0] if " state " in out else "UNKNOWN"
    return {"admin_up": "UP" in flags, "carrier": "NO-CARRIER" not in flags and
            "LOWER_UP" in flags, "oper_up": state == "UP"}


class FibreLink(ShapedLink):
    """A Mininet link whose two interfaces are gateway ports joined through a fibre
    namespace instead of directly; Mininet sees (and shapes) the gateway ends as usual."""

    def __init__(self, node1, node2, fibre: WavelengthEnds, **params):
        self.fibre = fibre
        super().__init__(node1, node2, **params)

    def makeIntfPair(self, intfname1, intfname2, addr1=None, addr2=None, node1=None,
                     node2=None, deleteIntfs=True):  # noqa: N802 (Mininet API)
        connect(self.fibre, intfname1, intfname2)
        for name, addr in ((intfname1, addr1), (intfname2, addr2)):
            if addr:
                run("ip", "link", "set", "dev", name, "address", addr)

