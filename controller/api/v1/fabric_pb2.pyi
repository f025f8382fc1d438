import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LinkKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LINK_KIND_UNSPECIFIED: _ClassVar[LinkKind]
    LINK_KIND_HOST: _ClassVar[LinkKind]
    LINK_KIND_FABRIC: _ClassVar[LinkKind]
    LINK_KIND_DCI: _ClassVar[LinkKind]

class SwitchRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SWITCH_ROLE_UNSPECIFIED: _ClassVar[SwitchRole]
    SWITCH_ROLE_SPINE: _ClassVar[SwitchRole]
    SWITCH_ROLE_LEAF: _ClassVar[SwitchRole]
    SWITCH_ROLE_GATEWAY: _ClassVar[SwitchRole]

class Carrier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CARRIER_UNSPECIFIED: _ClassVar[Carrier]
    CARRIER_HASHED: _ClassVar[Carrier]
    CARRIER_PINNED: _ClassVar[Carrier]
    CARRIER_SHORTEST: _ClassVar[Carrier]
    CARRIER_RESERVATION: _ClassVar[Carrier]
    CARRIER_RESERVATION_IF_MARKED: _ClassVar[Carrier]
LINK_KIND_UNSPECIFIED: LinkKind
LINK_KIND_HOST: LinkKind
LINK_KIND_FABRIC: LinkKind
LINK_KIND_DCI: LinkKind
SWITCH_ROLE_UNSPECIFIED: SwitchRole
SWITCH_ROLE_SPINE: SwitchRole
SWITCH_ROLE_LEAF: SwitchRole
SWITCH_ROLE_GATEWAY: SwitchRole
CARRIER_UNSPECIFIED: Carrier
CARRIER_HASHED: Carrier
CARRIER_PINNED: Carrier
CARRIER_SHORTEST: Carrier
CARRIER_RESERVATION: Carrier
CARRIER_RESERVATION_IF_MARKED: Carrier

class GetFabricRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetFabricResponse(_message.Message):
    __slots__ = ("fabric",)
    FABRIC_FIELD_NUMBER: _ClassVar[int]
    fabric: Fabric
    def __init__(self, fabric: _Optional[_Union[Fabric, _Mapping]] = ...) -> None: ...

class Fabric(_message.Message):
    __slots__ = ("name", "scale", "sites", "switches", "hosts", "links", "line_systems")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    SITES_FIELD_NUMBER: _ClassVar[int]
    SWITCHES_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    LINE_SYSTEMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    scale: float
    sites: _containers.RepeatedCompositeFieldContainer[Site]
    switches: _containers.RepeatedCompositeFieldContainer[Switch]
    hosts: _containers.RepeatedCompositeFieldContainer[Host]
    links: _containers.RepeatedCompositeFieldContainer[Link]
    line_systems: _containers.RepeatedCompositeFieldContainer[LineSystem]
    def __init__(self, name: _Optional[str] = ..., scale: _Optional[float] = ..., sites: _Optional[_Iterable[_Union[Site, _Mapping]]] = ..., switches: _Optional[_Iterable[_Union[Switch, _Mapping]]] = ..., hosts: _Optional[_Iterable[_Union[Host, _Mapping]]] = ..., links: _Optional[_Iterable[_Union[Link, _Mapping]]] = ..., line_systems: _Optional[_Iterable[_Union[LineSystem, _Mapping]]] = ...) -> None: ...

class Site(_message.Message):
    __slots__ = ("name", "spines", "leaves", "gateways", "hosts", "fabric_gbps")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPINES_FIELD_NUMBER: _ClassVar[int]
    LEAVES_FIELD_NUMBER: _ClassVar[int]
    GATEWAYS_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    FABRIC_GBPS_FIELD_NUMBER: _ClassVar[int]
    name: str
    spines: int
    leaves: int
    gateways: int
    hosts: int
    fabric_gbps: float
    def __init__(self, name: _Optional[str] = ..., spines: _Optional[int] = ..., leaves: _Optional[int] = ..., gateways: _Optional[int] = ..., hosts: _Optional[int] = ..., fabric_gbps: _Optional[float] = ...) -> None: ...

class Switch(_message.Message):
    __slots__ = ("name", "dpid", "role", "site", "connected", "problems")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DPID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    dpid: int
    role: SwitchRole
    site: str
    connected: bool
    problems: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., dpid: _Optional[int] = ..., role: _Optional[_Union[SwitchRole, str]] = ..., site: _Optional[str] = ..., connected: _Optional[bool] = ..., problems: _Optional[_Iterable[str]] = ...) -> None: ...

class Host(_message.Message):
    __slots__ = ("name", "site", "leaf", "port", "ip", "mac")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    name: str
    site: str
    leaf: str
    port: int
    ip: str
    mac: str
    def __init__(self, name: _Optional[str] = ..., site: _Optional[str] = ..., leaf: _Optional[str] = ..., port: _Optional[int] = ..., ip: _Optional[str] = ..., mac: _Optional[str] = ...) -> None: ...

class Endpoint(_message.Message):
    __slots__ = ("node", "port")
    NODE_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    node: str
    port: int
    def __init__(self, node: _Optional[str] = ..., port: _Optional[int] = ...) -> None: ...

class Link(_message.Message):
    __slots__ = ("name", "kind", "a", "b", "rate_gbps", "latency_ms", "site_a", "site_b", "line_system", "wavelength")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    RATE_GBPS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    SITE_A_FIELD_NUMBER: _ClassVar[int]
    SITE_B_FIELD_NUMBER: _ClassVar[int]
    LINE_SYSTEM_FIELD_NUMBER: _ClassVar[int]
    WAVELENGTH_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: LinkKind
    a: Endpoint
    b: Endpoint
    rate_gbps: float
    latency_ms: float
    site_a: str
    site_b: str
    line_system: str
    wavelength: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[LinkKind, str]] = ..., a: _Optional[_Union[Endpoint, _Mapping]] = ..., b: _Optional[_Union[Endpoint, _Mapping]] = ..., rate_gbps: _Optional[float] = ..., latency_ms: _Optional[float] = ..., site_a: _Optional[str] = ..., site_b: _Optional[str] = ..., line_system: _Optional[str] = ..., wavelength: _Optional[str] = ...) -> None: ...

class LineSystem(_message.Message):
    __slots__ = ("name", "site_a", "site_b", "fiber_km", "module", "mode", "spans", "capacity_gbps", "latency_ms", "power_w", "cost_usd", "wavelengths")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SITE_A_FIELD_NUMBER: _ClassVar[int]
    SITE_B_FIELD_NUMBER: _ClassVar[int]
    FIBER_KM_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_GBPS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    POWER_W_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    WAVELENGTHS_FIELD_NUMBER: _ClassVar[int]
    name: str
    site_a: str
    site_b: str
    fiber_km: float
    module: str
    mode: str
    spans: int
    capacity_gbps: float
    latency_ms: float
    power_w: float
    cost_usd: float
    wavelengths: _containers.RepeatedCompositeFieldContainer[Wavelength]
    def __init__(self, name: _Optional[str] = ..., site_a: _Optional[str] = ..., site_b: _Optional[str] = ..., fiber_km: _Optional[float] = ..., module: _Optional[str] = ..., mode: _Optional[str] = ..., spans: _Optional[int] = ..., capacity_gbps: _Optional[float] = ..., latency_ms: _Optional[float] = ..., power_w: _Optional[float] = ..., cost_usd: _Optional[float] = ..., wavelengths: _Optional[_Iterable[_Union[Wavelength, _Mapping]]] = ...) -> None: ...

class Wavelength(_message.Message):
    __slots__ = ("name", "frequency_thz", "width_ghz", "mode", "rate_gbps", "osnr_db", "required_osnr_db", "margin_db", "dispersion_ps_nm", "latency_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_THZ_FIELD_NUMBER: _ClassVar[int]
    WIDTH_GHZ_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    RATE_GBPS_FIELD_NUMBER: _ClassVar[int]
    OSNR_DB_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_OSNR_DB_FIELD_NUMBER: _ClassVar[int]
    MARGIN_DB_FIELD_NUMBER: _ClassVar[int]
    DISPERSION_PS_NM_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    frequency_thz: float
    width_ghz: float
    mode: str
    rate_gbps: float
    osnr_db: float
    required_osnr_db: float
    margin_db: float
    dispersion_ps_nm: float
    latency_ms: float
    def __init__(self, name: _Optional[str] = ..., frequency_thz: _Optional[float] = ..., width_ghz: _Optional[float] = ..., mode: _Optional[str] = ..., rate_gbps: _Optional[float] = ..., osnr_db: _Optional[float] = ..., required_osnr_db: _Optional[float] = ..., margin_db: _Optional[float] = ..., dispersion_ps_nm: _Optional[float] = ..., latency_ms: _Optional[float] = ...) -> None: ...

class ListLinksRequest(_message.Message):
    __slots__ = ("kind", "site")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    kind: LinkKind
    site: str
    def __init__(self, kind: _Optional[_Union[LinkKind, str]] = ..., site: _Optional[str] = ...) -> None: ...

class ListLinksResponse(_message.Message):
    __slots__ = ("link_loads",)
    LINK_LOADS_FIELD_NUMBER: _ClassVar[int]
    link_loads: _containers.RepeatedCompositeFieldContainer[LinkLoad]
    def __init__(self, link_loads: _Optional[_Iterable[_Union[LinkLoad, _Mapping]]] = ...) -> None: ...

class WatchLinkLoadRequest(_message.Message):
    __slots__ = ("interval", "kind", "site")
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    interval: _duration_pb2.Duration
    kind: LinkKind
    site: str
    def __init__(self, interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., kind: _Optional[_Union[LinkKind, str]] = ..., site: _Optional[str] = ...) -> None: ...

class WatchLinkLoadResponse(_message.Message):
    __slots__ = ("time", "link_loads")
    TIME_FIELD_NUMBER: _ClassVar[int]
    LINK_LOADS_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    link_loads: _containers.RepeatedCompositeFieldContainer[LinkLoad]
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., link_loads: _Optional[_Iterable[_Union[LinkLoad, _Mapping]]] = ...) -> None: ...

class LinkLoad(_message.Message):
    __slots__ = ("link", "wavelength", "kind", "src", "dst", "site_a", "site_b", "capacity_bps", "rate_bps", "utilization_ratio", "reserved_bps", "transmit_bytes_total", "receive_bytes_total", "up", "mode", "margin_db", "in_service")
    LINK_FIELD_NUMBER: _ClassVar[int]
    WAVELENGTH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SRC_FIELD_NUMBER: _ClassVar[int]
    DST_FIELD_NUMBER: _ClassVar[int]
    SITE_A_FIELD_NUMBER: _ClassVar[int]
    SITE_B_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_BPS_FIELD_NUMBER: _ClassVar[int]
    RATE_BPS_FIELD_NUMBER: _ClassVar[int]
    UTILIZATION_RATIO_FIELD_NUMBER: _ClassVar[int]
    RESERVED_BPS_FIELD_NUMBER: _ClassVar[int]
    TRANSMIT_BYTES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_BYTES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    MARGIN_DB_FIELD_NUMBER: _ClassVar[int]
    IN_SERVICE_FIELD_NUMBER: _ClassVar[int]
    link: str
    wavelength: str
    kind: LinkKind
    src: str
    dst: str
    site_a: str
    site_b: str
    capacity_bps: float
    rate_bps: float
    utilization_ratio: float
    reserved_bps: float
    transmit_bytes_total: float
    receive_bytes_total: float
    up: bool
    mode: str
    margin_db: float
    in_service: bool
    def __init__(self, link: _Optional[str] = ..., wavelength: _Optional[str] = ..., kind: _Optional[_Union[LinkKind, str]] = ..., src: _Optional[str] = ..., dst: _Optional[str] = ..., site_a: _Optional[str] = ..., site_b: _Optional[str] = ..., capacity_bps: _Optional[float] = ..., rate_bps: _Optional[float] = ..., utilization_ratio: _Optional[float] = ..., reserved_bps: _Optional[float] = ..., transmit_bytes_total: _Optional[float] = ..., receive_bytes_total: _Optional[float] = ..., up: _Optional[bool] = ..., mode: _Optional[str] = ..., margin_db: _Optional[float] = ..., in_service: _Optional[bool] = ...) -> None: ...

class ListElephantsRequest(_message.Message):
    __slots__ = ("site",)
    SITE_FIELD_NUMBER: _ClassVar[int]
    site: str
    def __init__(self, site: _Optional[str] = ...) -> None: ...

class ListElephantsResponse(_message.Message):
    __slots__ = ("policy", "elephants")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    ELEPHANTS_FIELD_NUMBER: _ClassVar[int]
    policy: str
    elephants: _containers.RepeatedCompositeFieldContainer[Elephant]
    def __init__(self, policy: _Optional[str] = ..., elephants: _Optional[_Iterable[_Union[Elephant, _Mapping]]] = ...) -> None: ...

class Elephant(_message.Message):
    __slots__ = ("src_host", "dst_host", "src_ip", "dst_ip", "ip_proto", "src_port", "dst_port", "rate_bps", "demand_bps", "hops", "idle", "carrier", "reservation_id")
    SRC_HOST_FIELD_NUMBER: _ClassVar[int]
    DST_HOST_FIELD_NUMBER: _ClassVar[int]
    SRC_IP_FIELD_NUMBER: _ClassVar[int]
    DST_IP_FIELD_NUMBER: _ClassVar[int]
    IP_PROTO_FIELD_NUMBER: _ClassVar[int]
    SRC_PORT_FIELD_NUMBER: _ClassVar[int]
    DST_PORT_FIELD_NUMBER: _ClassVar[int]
    RATE_BPS_FIELD_NUMBER: _ClassVar[int]
    DEMAND_BPS_FIELD_NUMBER: _ClassVar[int]
    HOPS_FIELD_NUMBER: _ClassVar[int]
    IDLE_FIELD_NUMBER: _ClassVar[int]
    CARRIER_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    src_host: str
    dst_host: str
    src_ip: str
    dst_ip: str
    ip_proto: int
    src_port: int
    dst_port: int
    rate_bps: float
    demand_bps: float
    hops: _containers.RepeatedCompositeFieldContainer[PinnedHop]
    idle: bool
    carrier: Carrier
    reservation_id: str
    def __init__(self, src_host: _Optional[str] = ..., dst_host: _Optional[str] = ..., src_ip: _Optional[str] = ..., dst_ip: _Optional[str] = ..., ip_proto: _Optional[int] = ..., src_port: _Optional[int] = ..., dst_port: _Optional[int] = ..., rate_bps: _Optional[float] = ..., demand_bps: _Optional[float] = ..., hops: _Optional[_Iterable[_Union[PinnedHop, _Mapping]]] = ..., idle: _Optional[bool] = ..., carrier: _Optional[_Union[Carrier, str]] = ..., reservation_id: _Optional[str] = ...) -> None: ...

class PinnedHop(_message.Message):
    __slots__ = ("wavelength", "line_system", "src", "dst")
    WAVELENGTH_FIELD_NUMBER: _ClassVar[int]
    LINE_SYSTEM_FIELD_NUMBER: _ClassVar[int]
    SRC_FIELD_NUMBER: _ClassVar[int]
    DST_FIELD_NUMBER: _ClassVar[int]
    wavelength: str
    line_system: str
    src: str
    dst: str
    def __init__(self, wavelength: _Optional[str] = ..., line_system: _Optional[str] = ..., src: _Optional[str] = ..., dst: _Optional[str] = ...) -> None: ...
