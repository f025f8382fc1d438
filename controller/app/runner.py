"""Run the os-ken app in this process through AppManager (os-ken 4 has no osken-manager)."""

from __future__ import annotations

import logging
import threading

from os_ken import cfg
from os_ken.base.app_manager import AppManager

from ..addresses import address_text
from .service import ControllerService

log = logging.getLogger("dcilab.controller")


def start_openflow(service: ControllerService, host: str, port: int,
                   poll_interval_s: float = 1.0, stop_event: threading.Event | None = None) -> list:
    """Start the OpenFlow listener and the app; return their threads (native, non-daemon:
    the caller ends the process when it is done)."""
    cfg.CONF(args=["--ofp-listen-host", host, "--ofp-tcp-listen-port", str(port)],
             project="os_ken")
    manager = AppManager.get_instance()
    manager.load_apps(["dcilab.app.osken_app"])
    contexts = manager.create_contexts()
    threads = manager.instantiate_apps(dcilab_service=service, poll_interval_s=poll_interval_s,
                                       stop_event=stop_event, **contexts)
    log.info("OpenFlow listening on %s", address_text(host, port))
    return threads
