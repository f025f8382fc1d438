"""Run the os-ken app in this process through AppManager (os-ken 4 has no osken-manager)."""

from __future__ import annotations

import logging
import re
import threading

from os_ken import cfg
from os_ken.base.app_manager import AppManager

from ..addresses import address_text
from .service import ControllerService

log = logging.getLogger("dcilab.controller")

OPENFLOW_VERSIONS = {1: "1.0", 2: "1.1", 3: "1.2", 4: "1.3", 5: "1.4", 6: "1.5"}


class VersionHint(logging.Filter):
    """os-ken refuses a switch of another OpenFlow version in wire terms ("unsupported
    version 0x1 ... versions [4] on datapath ('127.0.0.1', 40724)"): said as what to do
    (a hand-builder's bridge left at OpenFlow 1.0)."""

    _SAID = re.compile(r"(?:unsupported version|switch) 0x([0-9a-f]+).*"
                       r"on datapath \('?([^',]+)'?, (\d+)")

    def filter(self, record: logging.LogRecord) -> bool:
        found = self._SAID.search(record.getMessage())
        if found:
            version = int(found.group(1), 16)
            record.msg = (f"a switch at {found.group(2)}:{found.group(3)} speaks OpenFlow "
                          f"{OPENFLOW_VERSIONS.get(version, hex(version))}; dcilab needs 1.3: "
                          f"on Open vSwitch, `ovs-vsctl set bridge BRIDGE "
                          f"protocols=OpenFlow13` (refused: it retries)")
            record.args = ()
        return True


# os-ken's echo loop, on: a connection's send thread waits for its next message, and with
# os-ken's native threads nothing else wakes it once the connection is gone, so every
# closed connection kept two threads for good (a port scan, a refused second connection:
# thousands). The next echo wakes it. A peer that answers none of ECHO_MISSES + 1 echoes
# (one that never completes the handshake, or a switch gone silent) is closed.
ECHO_INTERVAL_S = 5.0
ECHO_MISSES = 3


def start_openflow(service: ControllerService, host: str, port: int,
                   poll_interval_s: float = 1.0, stop_event: threading.Event | None = None) -> list:
    """Start the OpenFlow listener and the app; return their threads (native, non-daemon:
    the caller ends the process when it is done)."""
    cfg.CONF(args=["--ofp-listen-host", host, "--ofp-tcp-listen-port", str(port)],
             project="os_ken")
    cfg.CONF.set_override("echo_request_interval", ECHO_INTERVAL_S)     # not on its CLI
    cfg.CONF.set_override("maximum_unreplied_echo_requests", ECHO_MISSES)
    logging.getLogger("OFPHandler").addFilter(VersionHint())
    manager = AppManager.get_instance()
    manager.load_apps(["dcilab.app.osken_app"])
    contexts = manager.create_contexts()
    threads = manager.instantiate_apps(dcilab_service=service, poll_interval_s=poll_interval_s,
                                       stop_event=stop_event, **contexts)
    log.info("OpenFlow listening on %s", address_text(host, port))
    return threads
