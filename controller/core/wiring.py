"""Are the cables where the fabric file says? Link discovery against the file.

A switch sends a probe (an LLDP frame naming its datapath id and port) out of every port
to another switch when it is programmed, and out of a port when that port comes up (a
cable plugged in again); every switch sends LLDP to the controller. A probe that arrives
on another port than the file's far end of the port it left is a crossed cable: ports
with the right numbers and names joined to the wrong neighbours, which no port check sees
and which black-holes what is routed over them. Pure: frames in, verdicts out.

Probes are signed (HMAC-SHA256 under a key of the controller's own): a host can send
LLDP too, and one naming a gateway's port would otherwise take its wavelengths out of
service (link fabrication, as TopoGuard and ONOS's signed LLDP guard against).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from os_ken.lib.packet import ethernet, lldp, packet

from ..fabric import Fabric
from ..fabric.model import HOST
from ..openflow import messages as of

_CHASSIS_PREFIX = b"dcilab:"          # a probe of ours, not another LLDP speaker's
PROBE_SOURCE_MAC = "02:dc:11:ab:00:01"


def probe_key() -> bytes:
    """A fresh signing key: one per controller, never sent anywhere."""
    return secrets.token_bytes(32)


def _signature(key: bytes, dpid: int, port: int) -> bytes:
    return hmac.new(key, f"{dpid:016x}/{port}".encode(), hashlib.sha256).hexdigest()[:32].encode()


def probe(dpid: int, port: int, key: bytes) -> bytes:
    """The LLDP frame switch `dpid` sends out of `port`, signed with `key`."""
    frame = packet.Packet()
    frame.add_protocol(ethernet.ethernet(dst=lldp.LLDP_MAC_NEAREST_BRIDGE, src=PROBE_SOURCE_MAC,
                                         ethertype=of.ETH_TYPE_LLDP))
    frame.add_protocol(lldp.lldp(tlvs=[
        lldp.ChassisID(subtype=lldp.ChassisID.SUB_LOCALLY_ASSIGNED,
                       chassis_id=(_CHASSIS_PREFIX + f"{dpid:016x}:".encode()
                                   + _signature(key, dpid, port))),
        lldp.PortID(subtype=lldp.PortID.SUB_PORT_COMPONENT, port_id=str(port).encode()),
        lldp.TTL(ttl=120),
        lldp.End()]))
    frame.serialize()
    return bytes(frame.data)


def read_probe(data: bytes, key: bytes) -> tuple[int, int] | None:
    """(datapath id, port) a probe signed with `key` left from; None for anything else
    (another LLDP speaker's frame, a forged or another controller's probe)."""
    try:
        found = packet.Packet(data).get_protocol(lldp.lldp)
    except Exception:           # a truncated or foreign frame is not ours
        return None
    if found is None or len(found.tlvs) < 2:
        return None
    chassis, port = found.tlvs[0], found.tlvs[1]
    if not isinstance(chassis, lldp.ChassisID) or not isinstance(port, lldp.PortID):
        return None
    if not chassis.chassis_id.startswith(_CHASSIS_PREFIX):
        return None
    dpid_text, _, signature = chassis.chassis_id[len(_CHASSIS_PREFIX):].partition(b":")
    try:
        dpid, port_no = int(dpid_text, 16), int(port.port_id)
    except ValueError:
        return None
    if not hmac.compare_digest(signature, _signature(key, dpid, port_no)):
        return None
    return dpid, port_no


def probed_ports(fabric: Fabric, switch: str) -> list[int]:
    """The ports of `switch` that lead to another switch (hosts send no probes back)."""
    return [port for port, link in fabric.ports(switch).items() if link.kind != HOST]


def crossed(fabric: Fabric, sender: str, sent_port: int, receiver: str,
            received_port: int) -> str | None:
    """Why a probe from `sender` port `sent_port`, arriving at `receiver` port
    `received_port`, shows a cable the file does not have; None when it is the file's."""
    link = fabric.ports(sender).get(sent_port)
    if link is None:
        return (f"{sender} port {sent_port}, a port the fabric file does not have, reaches "
                f"{receiver} port {received_port}")
    far = link.b if (link.a.node, link.a.port) == (sender, sent_port) else link.a
    if (far.node, far.port) == (receiver, received_port):
        return None
    here = fabric.ports(receiver).get(received_port)
    meant = f" (the file joins that port to {here.name})" if here is not None else ""
    return (f"cables crossed: {sender} port {sent_port} reaches {receiver} port "
            f"{received_port}{meant}; the fabric file joins it to {far.node} port {far.port} "
            f"({link.name})")


def stranger(fabric: Fabric, leaf: str, port: int, mac: str, ip: str) -> str | None:
    """Why an ARP sent by `mac` from `ip` on `leaf` port `port` shows a host the file does
    not put there (swapped host cables, a host with another MAC or address): routes and
    ARP answers are the file's, so such a host gets no traffic. None when it is the file's
    host (an address probe, from 0.0.0.0, is judged by its MAC alone), or not a host port."""
    link = fabric.ports(leaf).get(port)
    if link is None or link.kind != HOST:
        return None
    meant = fabric.hosts[link.name]             # a host's link is named after it
    if mac == meant.mac and ip in (meant.ip, "0.0.0.0"):
        return None
    here = (f"{leaf} port {port} should have {meant.name} (MAC {meant.mac}, {meant.ip}) but "
            f"hears MAC {mac} from {ip}")
    other = fabric.host_by_ip(ip)
    if other is None or other is meant:
        other = next((h for h in fabric.hosts.values() if h is not meant and h.mac == mac),
                     None)
    if other is not None:
        return (f"{here}, which the fabric file gives {other.name} (at {other.leaf} port "
                f"{other.port}): host cables swapped?")
    return f"{here}: give the host the file's MAC and address, or move its cable"
