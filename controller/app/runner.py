"""Run the os-ken app in this process through AppManager (os-ken 4 has no osken-manager)."""

from __future__ import annotations

import logging
import threading

from os_ken import cfg
from os_ken.base.app_manager import AppManager

from ..core import FabricController

log = logging.getLogger("dcilab.controller")


def start_openflow(controller: FabricController, host: str, port: int) -> list:
    """Start the OpenFlow listener and the app; return their threads (native, non-daemon)."""
    cfg.CONF(args=["--ofp-listen-host", host, "--ofp-tcp-listen-port", str(port)],
             project="os_ken")
    manager = AppManager.get_instance()
    manager.load_apps(["dcilab.app.osken_app"])
    contexts = manager.create_contexts()
    threads = manager.instantiate_apps(dcilab_controller=controller, **contexts)
    log.info("OpenFlow listening on %s:%d", host, port)
    return threads


def serve_until(stop: threading.Event, controller: FabricController, host: str,
                port: int) -> None:
    """Serve until `stop` is set. os-ken's native threads cannot be killed, so the caller
    exits the process afterwards (see cli)."""
    start_openflow(controller, host, port)
    stop.wait()
