"""Every metric dcilab exports, named once. The collector, the event metrics and the
Grafana dashboards (dashboards.py) take their names from here.

Counters are named without `_total` (prometheus_client adds it); `total()` and
`bucket()` give the series a query reads.
"""

from __future__ import annotations

# -- links (collector.py), labels LINK_LABELS there ---------------------------------------
LINK_CAPACITY_BPS = "dcilab_link_capacity_bps"
LINK_TRANSMIT_BYTES = "dcilab_link_transmit_bytes"            # counter
LINK_RECEIVE_BYTES = "dcilab_link_receive_bytes"              # counter
LINK_UTILIZATION = "dcilab_link_utilization_ratio"
LINK_RESERVED_BPS = "dcilab_link_reserved_bps"
LINK_UP = "dcilab_link_up"
LINK_DRAINED = "dcilab_link_drained"
LINKS_HELD_DOWN = "dcilab_links_held_down"

# -- wavelengths (collector.py) -----------------------------------------------------------
WAVELENGTH_OSNR_DB = "dcilab_wavelength_osnr_db"
WAVELENGTH_GSNR_DB = "dcilab_wavelength_gsnr_db"
WAVELENGTH_REQUIRED_OSNR_DB = "dcilab_wavelength_required_osnr_db"
WAVELENGTH_MARGIN_DB = "dcilab_wavelength_margin_db"
WAVELENGTH_FREQUENCY_HZ = "dcilab_wavelength_frequency_hz"
WAVELENGTH_MODE = "dcilab_wavelength_mode"                    # info: exported as _info

# -- wavelengths as their transceivers report them over gNMI (optical.py) -----------------
WAVELENGTH_REPORTED_GSNR_DB = "dcilab_wavelength_reported_gsnr_db"
WAVELENGTH_REPORTED_MARGIN_DB = "dcilab_wavelength_reported_margin_db"
WAVELENGTH_PREFEC_BER = "dcilab_wavelength_prefec_ber"
WAVELENGTH_Q_FACTOR_DB = "dcilab_wavelength_q_factor_db"
WAVELENGTH_REPORTED_RATE_BPS = "dcilab_wavelength_reported_rate_bps"
WAVELENGTH_MODE_CHANGES = "dcilab_wavelength_mode_changes"      # counter

# -- controller state (collector.py) ------------------------------------------------------
RESERVATIONS = "dcilab_reservations"
RESERVATIONS_LIVE = "dcilab_reservations_live"                # by protection class
RESERVATIONS_UNPROTECTED = "dcilab_reservations_unprotected"  # PROTECTED, standby lost
ELEPHANT_FLOWS = "dcilab_elephant_flows"
SWITCH_CONNECTED = "dcilab_switch_connected"
SWITCH_WIRING_PROBLEMS = "dcilab_switch_wiring_problems"      # ports, cables off the file
EMULATION_SCALE = "dcilab_emulation_scale"
CONTROLLER_START_TIME = "dcilab_controller_start_time_seconds"
STATE_FILE_WAIT = "dcilab_state_file_wait_seconds"           # a commit that does not end
STATE_FILE_FAILING = "dcilab_state_file_failing"             # the last commit failed
OPENFLOW_EVENTS_QUEUED = "dcilab_openflow_events_queued"      # the app's queue, 128 at most

# -- events (events.py) -------------------------------------------------------------------
RESERVATION_REQUESTS = "dcilab_reservation_requests"          # counter
RESERVATION_RELEASES = "dcilab_reservation_releases"          # counter
RESERVE_DURATION = "dcilab_reserve_duration_seconds"          # histogram
READS_REFUSED = "dcilab_reads_refused"                        # counter
FLOW_PLACEMENTS = "dcilab_flow_placements"                    # counter
PATH_COMPUTE_DURATION = "dcilab_path_compute_duration_seconds"  # histogram
OPENFLOW_SENT = "dcilab_openflow_messages_sent"               # counter
OPENFLOW_ERRORS = "dcilab_openflow_errors"                    # counter
FAILURE_EVENTS = "dcilab_failure_events"                      # counter
RESTORATION_DURATION = "dcilab_restoration_duration_seconds"  # histogram

# -- recorded by deploy/prometheus/rules.yml ----------------------------------------------
SITE_PAIR_CAPACITY = "site_a_site_b:dcilab_dci_capacity_bps:sum"
SITE_PAIR_RESERVED = "site_a_site_b:dcilab_dci_reserved_bps:sum"
SITE_PAIR_TRANSMIT = "site_a_site_b:dcilab_dci_transmit_bps:rate1m"
SITE_PAIR_UTILIZATION = "site_a_site_b:dcilab_dci_utilization:ratio"
SITE_PAIR_RESERVED_RATIO = "site_a_site_b:dcilab_dci_reserved:ratio"
LINK_KIND_MAX_UTILIZATION = "link_kind:dcilab_link_utilization_ratio:max"
# reported by the transceivers where they report (--gnmi), else the optical plan's
WAVELENGTH_MARGIN_NOW = "wavelength:dcilab_wavelength_margin_db:reported_else_modelled"

# -- Prometheus's own ---------------------------------------------------------------------
JOB = "dcilab-controller"          # the scrape job of deploy/prometheus and prometheus_server


def total(counter: str) -> str:
    return f"{counter}_total"


def bucket(histogram: str) -> str:
    return f"{histogram}_bucket"


def info(name: str) -> str:
    return f"{name}_info"
