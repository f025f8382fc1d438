"""The emulated transceivers as OpenConfig leaves, and gNMI paths matched against them.

One gNMI server answers for every gateway of the emulation; a request names the gateway in
its prefix `target` (gNMI's way for one server to front several devices) or leaves it empty
for all of them, each notification then carrying its gateway as `target`. On each gateway:

openconfig-platform (with the optical-channel augment of openconfig-terminal-device),
one component per wavelength ending there, named after the wavelength:
  /components/component[name=W]/state/{name,type}
  /components/component[name=W]/optical-channel/config/{frequency,target-output-power,operational-mode}
  /components/component[name=W]/optical-channel/state/{frequency,target-output-power,operational-mode}
  /components/component[name=W]/optical-channel/state/output-power/{instant,avg,min,max}
  /components/component[name=W]/optical-channel/state/osnr/{instant,avg,min,max}
openconfig-terminal-device, one OTN logical channel per wavelength, indexed by the
gateway's port number for it:
  /terminal-device/logical-channels/channel[index=P]/state/{index,description,logical-channel-type,link-state}
  /terminal-device/logical-channels/channel[index=P]/logical-channel-assignments/assignment[index=1]/state/{index,optical-channel}
  /terminal-device/logical-channels/channel[index=P]/otn/state/{pre-fec-ber,q-value,esnr}/{instant,avg,min,max}
  /terminal-device/operational-modes/mode[mode-id=N]/state/{mode-id,description,vendor-id}

Units as OpenConfig: frequency in MHz, powers in dBm, OSNR, ESNR and Q in dB, BER as a
ratio. OSNR per 0.1 nm. `operational-mode` is writable (gNMI Set on its config leaf).

Not OpenConfig, and not on any gateway (target ""): the emulator's line-system knobs, the
way a lab inserts a variable attenuator into a span or swaps an amplifier:
  /line-systems/line-system[name=L]/config/launch-power
  /line-systems/line-system[name=L]/spans/span[index=K]/config/extra-loss
  /line-systems/line-system[name=L]/amplifiers/amplifier[index=K]/config/noise-figure
A Set value is a number, or {"value": X, "ramp-s": S} to get there linearly over S
seconds; a Set delete of /line-systems/line-system[name=L] restores the line as designed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from .optical_state import OpticalState, TransceiverStatus

# (name, ((key, value), ...)) — one element of a path, keys sorted.
Elem = tuple[str, tuple[tuple[str, str], ...]]
LINE_SYSTEMS_TARGET = ""
VENDOR = "dcilab"
STAT_NAMES = ("instant", "avg", "min", "max")


@dataclass(frozen=True)
class Leaf:
    target: str
    path: tuple[Elem, ...]
    value: object


def elem(_name: str, **keys: object) -> Elem:
    return (_name, tuple(sorted((k.replace("_", "-"), str(v)) for k, v in keys.items())))


def path_text(path: Sequence[Elem]) -> str:
    return "/" + "/".join(name + "".join(f"[{k}={v}]" for k, v in keys) for name, keys in path)


def matches(request: Sequence[Elem], path: Sequence[Elem]) -> bool:
    """Whether `path` lies at or under `request` (names and keys equal; "*" matches any,
    a key left out matches any, "..." matches any number of elements). In time linear in
    both lengths each: a request of many "..." once took a server thread for minutes,
    trying every split again (an outside tester's find)."""
    reach = {0}                  # how many elements of `path` the request so far can take
    for name, keys in request:
        if name == "...":
            reach = set(range(min(reach), len(path) + 1))
        else:
            reach = {j + 1 for j in reach if j < len(path) and _elem_matches(name, keys, path[j])}
        if not reach:
            return False
    return True


def _elem_matches(name: str, keys: tuple[tuple[str, str], ...], have: Elem) -> bool:
    have_name, have_keys = have
    if name not in ("*", have_name):
        return False
    found = dict(have_keys)
    return all(value == "*" or found.get(key) == value for key, value in keys)


def _stats(base: tuple[Elem, ...], stats, scale: float = 1.0, digits: int = 2) -> list:
    return [(base + (elem(name),), round(getattr(stats, name) * scale, digits))
            for name in STAT_NAMES]


def transceiver_leaves(status: TransceiverStatus) -> list[Leaf]:
    t = status.transceiver
    component = (elem("components"), elem("component", name=t.wavelength))
    och = component + (elem("optical-channel"),)
    frequency_mhz = round(t.frequency_thz * 1e6)
    config = {"frequency": frequency_mhz, "target-output-power": round(status.output_power_dbm, 2),
              "operational-mode": status.mode_id}
    channel = (elem("terminal-device"), elem("logical-channels"), elem("channel", index=t.port))
    otn = channel + (elem("otn"), elem("state"))
    # A receiver without a signal in its mode (no light, reconfiguring, the far end in
    # another mode) measures nothing; one it cannot lock to (too noisy) measures the OSNR
    # of what arrives but no BER, Q or ESNR. What is not measured is left out.
    measured = not (status.dark or status.no_light)
    osnr_measured = status.signal and not status.no_light
    leaves = [
        (component + (elem("state"), elem("name")), t.wavelength),
        (component + (elem("state"), elem("type")), "openconfig-transport-types:OPTICAL_CHANNEL"),
        *((och + (elem("config"), elem(k)), v) for k, v in config.items()),
        *((och + (elem("state"), elem(k)), v) for k, v in config.items()),
        *(_stats(och + (elem("state"), elem("osnr")), status.stats["osnr_db"])
          if osnr_measured else ()),
        *_stats(och + (elem("state"), elem("output-power")), status.stats["output_power_dbm"]),
        (channel + (elem("state"), elem("index")), t.port),
        (channel + (elem("state"), elem("description")), t.wavelength),
        (channel + (elem("state"), elem("logical-channel-type")),
         "openconfig-transport-types:PROT_OTN"),
        (channel + (elem("state"), elem("link-state")),
         "DOWN" if status.dark or status.no_light else "UP"),
        (channel + (elem("logical-channel-assignments"), elem("assignment", index=1),
                    elem("state"), elem("index")), 1),
        (channel + (elem("logical-channel-assignments"), elem("assignment", index=1),
                    elem("state"), elem("optical-channel")), t.wavelength),
    ]
    if measured:
        leaves += [
            # decimal64 with 18 fraction digits in OpenConfig: keep the BER's significant
            # digits.
            *((otn + (elem("pre-fec-ber"), elem(name)),
               float(f"{getattr(status.stats['prefec_ber'], name):.6e}"))
              for name in STAT_NAMES),
            *_stats(otn + (elem("q-value"),), status.stats["q_db"]),
            *_stats(otn + (elem("esnr"),), status.stats["esnr_db"]),
        ]
    return [Leaf(t.gateway, path, value) for path, value in leaves]


def mode_leaves(state: OpticalState, gateways: Iterable[str]) -> list[Leaf]:
    """Each gateway's operational modes: those of the modules it has."""
    modules: dict[str, set[str]] = {}
    for t in state.transceivers.values():
        modules.setdefault(t.gateway, set()).add(t.module.name)
    out = []
    for (module, mode_name), mode_id in state.mode_ids.items():
        mode = state.catalog.module(module).mode(mode_name)
        base = (elem("terminal-device"), elem("operational-modes"),
                elem("mode", mode_id=mode_id), elem("state"))
        description = (f"{module} {mode_name}: {mode.modulation}, {mode.baud_gbd:g} GBd, "
                       f"{mode.fec}")
        for gateway in (g for g in gateways if module in modules.get(g, ())):
            out += [Leaf(gateway, base + (elem("mode-id"),), mode_id),
                    Leaf(gateway, base + (elem("description"),), description),
                    Leaf(gateway, base + (elem("vendor-id"),), VENDOR)]
    return out


def line_system_leaves(state: OpticalState) -> list[Leaf]:
    out = []
    for name in state.fabric.line_systems:
        line = state.line_state(name)
        base = (elem("line-systems"), elem("line-system", name=name))
        out.append(Leaf(LINE_SYSTEMS_TARGET, base + (elem("config"), elem("launch-power")),
                        round(line.launch_power_dbm, 3)))
        for k in range(1, line.spans + 1):
            out.append(Leaf(LINE_SYSTEMS_TARGET, base + (elem("spans"), elem("span", index=k),
                                                         elem("config"), elem("extra-loss")),
                            round(line.span_extra_loss_db[k - 1], 3)))
            out.append(Leaf(LINE_SYSTEMS_TARGET,
                            base + (elem("amplifiers"), elem("amplifier", index=k),
                                    elem("config"), elem("noise-figure")),
                            round(line.amplifier_nf_db[k - 1], 3)))
    return out


def all_leaves(state: OpticalState, target: str = "") -> list[Leaf]:
    """Every leaf of `target` (a gateway), or of every gateway and the line systems if ""."""
    statuses = sorted(state.statuses().values(),
                      key=lambda s: (s.transceiver.gateway, s.transceiver.port))
    gateways = sorted({s.transceiver.gateway for s in statuses})
    if target:
        statuses = [s for s in statuses if s.transceiver.gateway == target]
        gateways = [g for g in gateways if g == target]
    leaves = [leaf for status in statuses for leaf in transceiver_leaves(status)]
    leaves += mode_leaves(state, gateways)
    if not target:
        leaves += line_system_leaves(state)
    return leaves


def schema(state: OpticalState) -> list[Leaf]:
    """Every leaf the server can serve, measured or not now: a receiver with no signal
    leaves its readings out, yet a path to them is a good path to subscribe to."""
    statuses = [replace(s, dark=False, no_light=False, signal=True)
                for s in state.statuses().values()]
    return ([leaf for status in statuses for leaf in transceiver_leaves(status)]
            + mode_leaves(state, gateways(state)) + line_system_leaves(state))


def gateways(state: OpticalState) -> set[str]:
    return {t.gateway for t in state.transceivers.values()}
