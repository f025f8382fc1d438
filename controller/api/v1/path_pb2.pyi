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

class ReservationState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESERVATION_STATE_UNSPECIFIED: _ClassVar[ReservationState]
    RESERVATION_STATE_PENDING: _ClassVar[ReservationState]
    RESERVATION_STATE_ACTIVE: _ClassVar[ReservationState]
    RESERVATION_STATE_RELEASED: _ClassVar[ReservationState]
    RESERVATION_STATE_EXPIRED: _ClassVar[ReservationState]
    RESERVATION_STATE_DEGRADED: _ClassVar[ReservationState]

class Protection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROTECTION_UNSPECIFIED: _ClassVar[Protection]
    PROTECTION_NONE: _ClassVar[Protection]
    PROTECTION_RESTORABLE: _ClassVar[Protection]
    PROTECTION_PROTECTED: _ClassVar[Protection]
RESERVATION_STATE_UNSPECIFIED: ReservationState
RESERVATION_STATE_PENDING: ReservationState
RESERVATION_STATE_ACTIVE: ReservationState
RESERVATION_STATE_RELEASED: ReservationState
RESERVATION_STATE_EXPIRED: ReservationState
RESERVATION_STATE_DEGRADED: ReservationState
PROTECTION_UNSPECIFIED: Protection
PROTECTION_NONE: Protection
PROTECTION_RESTORABLE: Protection
PROTECTION_PROTECTED: Protection

class TrafficSelector(_message.Message):
    __slots__ = ("ip_protocol", "dst_port_min", "dst_port_max", "dscp")
    IP_PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    DST_PORT_MIN_FIELD_NUMBER: _ClassVar[int]
    DST_PORT_MAX_FIELD_NUMBER: _ClassVar[int]
    DSCP_FIELD_NUMBER: _ClassVar[int]
    ip_protocol: int
    dst_port_min: int
    dst_port_max: int
    dscp: int
    def __init__(self, ip_protocol: _Optional[int] = ..., dst_port_min: _Optional[int] = ..., dst_port_max: _Optional[int] = ..., dscp: _Optional[int] = ...) -> None: ...

class ReservePathRequest(_message.Message):
    __slots__ = ("src_host", "dst_host", "bandwidth_gbps", "max_latency_ms", "duration", "request_id", "priority", "selector", "protection")
    SRC_HOST_FIELD_NUMBER: _ClassVar[int]
    DST_HOST_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_GBPS_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    PROTECTION_FIELD_NUMBER: _ClassVar[int]
    src_host: str
    dst_host: str
    bandwidth_gbps: float
    max_latency_ms: float
    duration: _duration_pb2.Duration
    request_id: str
    priority: int
    selector: TrafficSelector
    protection: Protection
    def __init__(self, src_host: _Optional[str] = ..., dst_host: _Optional[str] = ..., bandwidth_gbps: _Optional[float] = ..., max_latency_ms: _Optional[float] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., request_id: _Optional[str] = ..., priority: _Optional[int] = ..., selector: _Optional[_Union[TrafficSelector, _Mapping]] = ..., protection: _Optional[_Union[Protection, str]] = ...) -> None: ...

class ReservePathResponse(_message.Message):
    __slots__ = ("reservation",)
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    reservation: Reservation
    def __init__(self, reservation: _Optional[_Union[Reservation, _Mapping]] = ...) -> None: ...

class ReleasePathRequest(_message.Message):
    __slots__ = ("reservation_id",)
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    def __init__(self, reservation_id: _Optional[str] = ...) -> None: ...

class ReleasePathResponse(_message.Message):
    __slots__ = ("reservation",)
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    reservation: Reservation
    def __init__(self, reservation: _Optional[_Union[Reservation, _Mapping]] = ...) -> None: ...

class GetReservationRequest(_message.Message):
    __slots__ = ("reservation_id",)
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    def __init__(self, reservation_id: _Optional[str] = ...) -> None: ...

class GetReservationResponse(_message.Message):
    __slots__ = ("reservation",)
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    reservation: Reservation
    def __init__(self, reservation: _Optional[_Union[Reservation, _Mapping]] = ...) -> None: ...

class ListReservationsRequest(_message.Message):
    __slots__ = ("state", "page_size", "page_token", "show_ended")
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SHOW_ENDED_FIELD_NUMBER: _ClassVar[int]
    state: ReservationState
    page_size: int
    page_token: str
    show_ended: bool
    def __init__(self, state: _Optional[_Union[ReservationState, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., show_ended: _Optional[bool] = ...) -> None: ...

class ListReservationsResponse(_message.Message):
    __slots__ = ("reservations", "next_page_token")
    RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    reservations: _containers.RepeatedCompositeFieldContainer[Reservation]
    next_page_token: str
    def __init__(self, reservations: _Optional[_Iterable[_Union[Reservation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Reservation(_message.Message):
    __slots__ = ("reservation_id", "request_id", "state", "src_host", "dst_host", "bandwidth_gbps", "max_latency_ms", "duration", "hops", "latency_ms", "create_time", "expire_time", "meter_id", "priority", "degraded_reason", "selector", "protection", "standby_hops", "cookie")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SRC_HOST_FIELD_NUMBER: _ClassVar[int]
    DST_HOST_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_GBPS_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    HOPS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    METER_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_REASON_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    PROTECTION_FIELD_NUMBER: _ClassVar[int]
    STANDBY_HOPS_FIELD_NUMBER: _ClassVar[int]
    COOKIE_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    request_id: str
    state: ReservationState
    src_host: str
    dst_host: str
    bandwidth_gbps: float
    max_latency_ms: float
    duration: _duration_pb2.Duration
    hops: _containers.RepeatedCompositeFieldContainer[ReservedHop]
    latency_ms: float
    create_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    meter_id: int
    priority: int
    degraded_reason: str
    selector: TrafficSelector
    protection: Protection
    standby_hops: _containers.RepeatedCompositeFieldContainer[ReservedHop]
    cookie: int
    def __init__(self, reservation_id: _Optional[str] = ..., request_id: _Optional[str] = ..., state: _Optional[_Union[ReservationState, str]] = ..., src_host: _Optional[str] = ..., dst_host: _Optional[str] = ..., bandwidth_gbps: _Optional[float] = ..., max_latency_ms: _Optional[float] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., hops: _Optional[_Iterable[_Union[ReservedHop, _Mapping]]] = ..., latency_ms: _Optional[float] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., meter_id: _Optional[int] = ..., priority: _Optional[int] = ..., degraded_reason: _Optional[str] = ..., selector: _Optional[_Union[TrafficSelector, _Mapping]] = ..., protection: _Optional[_Union[Protection, str]] = ..., standby_hops: _Optional[_Iterable[_Union[ReservedHop, _Mapping]]] = ..., cookie: _Optional[int] = ...) -> None: ...

class WatchReservationsRequest(_message.Message):
    __slots__ = ("reservation_id",)
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    def __init__(self, reservation_id: _Optional[str] = ...) -> None: ...

class WatchReservationsResponse(_message.Message):
    __slots__ = ("reservation",)
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    reservation: Reservation
    def __init__(self, reservation: _Optional[_Union[Reservation, _Mapping]] = ...) -> None: ...

class ReservedHop(_message.Message):
    __slots__ = ("switch", "out_port", "link", "wavelength")
    SWITCH_FIELD_NUMBER: _ClassVar[int]
    OUT_PORT_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    WAVELENGTH_FIELD_NUMBER: _ClassVar[int]
    switch: str
    out_port: int
    link: str
    wavelength: str
    def __init__(self, switch: _Optional[str] = ..., out_port: _Optional[int] = ..., link: _Optional[str] = ..., wavelength: _Optional[str] = ...) -> None: ...
