"""`dcilab reservations`: the reason line says what kind of reason it is (an operator's
RELEASED reservation, dropped at a start, was labelled "degraded:")."""

from __future__ import annotations

from dcilab.api.v1 import path_pb2 as ppb
from dcilab.cli.client import _describe


def reservation(state: str, reason: str) -> ppb.Reservation:
    return ppb.Reservation(reservation_id="r1", src_host="a-h1", dst_host="b-h1",
                           state=ppb.ReservationState.Value(f"RESERVATION_STATE_{state}"),
                           degraded_reason=reason)


def test_a_dropped_reservation_says_why_and_a_degraded_one_says_degraded():
    assert "\n  why: dropped at start: hop 2" in _describe(
        reservation("RELEASED", "dropped at start: hop 2"))
    assert "\n  degraded: la.w1 is down" in _describe(reservation("DEGRADED", "la.w1 is down"))
    assert "why:" not in _describe(reservation("ACTIVE", ""))
