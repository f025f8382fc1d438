"""The readers of `dcilab bench --api --api-readers`: clients that loop on listings and
scrapers that loop on /metrics, in a process of their own (spawned), so their work weighs
on the controller, not on the bench's own reservation clients.

`run_readers(address, metrics_url, listers, scrapers, stop, results, ready)` sets `ready`
once every reader has made its first call (the bench's clock waits for it: a fixed wait
was too short for a busy machine's spawn and imports), runs until `stop` is set, and puts
one dict of counts and latencies on `results`.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request


class _FirstCalls:
    """Sets `ready` once each of `count` readers has made its first call."""

    def __init__(self, count: int, ready):
        self._left, self._ready, self._lock = count, ready, threading.Lock()
        if not count:
            ready.set()

    def made(self) -> None:
        with self._lock:
            self._left -= 1
            if self._left == 0:
                self._ready.set()


def _lister(address: str, stop, out: dict, lock: threading.Lock, first: _FirstCalls) -> None:
    from ..api.client import Client
    with Client(address) as client:
        try:
            _list_until(client, stop, out, lock, first)
        finally:
            with lock:
                out["list_waits"] += client.read_retries


def _list_until(client, stop, out: dict, lock: threading.Lock, first: _FirstCalls) -> None:
    from ..api.client import ApiError, Unreachable
    called = False
    while not stop.is_set():
        try:
            for show_ended in (False, True):           # live ones, then the whole history
                for page in client.reservation_pages(show_ended=show_ended):
                    with lock:
                        out["pages"] += 1
                        out["records"] += len(page)
                    if not called:
                        called = True
                        first.made()
                    if stop.is_set():
                        return
        except ApiError as exc:
            with lock:
                out["list_refused" if exc.code == "RESOURCE_EXHAUSTED" else "list_errors"] += 1
            stop.wait(0.5)
        except Unreachable:
            with lock:
                out["list_errors"] += 1
        if not called:                                # answered, if not with a page
            called = True
            first.made()


def _scraper(url: str, stop, out: dict, lock: threading.Lock, first: _FirstCalls) -> None:
    called = False
    while not stop.is_set():
        started = time.perf_counter()
        try:
            # As Prometheus asks for it.
            request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
            with urllib.request.urlopen(request, timeout=10) as reply:
                reply.read()
            key = "scrapes"
        except urllib.error.HTTPError as exc:
            key = "scrapes_503" if exc.code == 503 else "scrape_errors"
            retry_s = float(exc.headers.get("Retry-After") or 1)
        except (OSError, urllib.error.URLError):
            key = "scrape_errors"
        elapsed = time.perf_counter() - started
        with lock:
            out[key] += 1
            if key == "scrapes":
                out["scrape_s"].append(elapsed)
        if not called:
            called = True
            first.made()
        if key == "scrapes_503":
            stop.wait(retry_s)                        # as told (Retry-After)
        elif key != "scrapes":
            stop.wait(0.05)


def run_readers(address: str, metrics_url: str, listers: int, scrapers: int, stop,
                results, ready) -> None:
    out = {"pages": 0, "records": 0, "list_refused": 0, "list_waits": 0, "list_errors": 0, "scrapes": 0,
           "scrapes_503": 0, "scrape_errors": 0, "scrape_s": []}
    lock = threading.Lock()
    first = _FirstCalls(listers + scrapers, ready)
    threads = ([threading.Thread(target=_lister, args=(address, stop, out, lock, first),
                                 daemon=True) for _ in range(listers)]
               + [threading.Thread(target=_scraper, args=(metrics_url, stop, out, lock, first),
                                   daemon=True) for _ in range(scrapers)])
    started = time.perf_counter()
    for t in threads:
        t.start()
    stop.wait()
    for t in threads:
        t.join(15)
    out["seconds"] = time.perf_counter() - started
    scrape_s = sorted(out.pop("scrape_s"))
    out["scrape_ms_p50"] = round(scrape_s[len(scrape_s) // 2] * 1000, 2) if scrape_s else None
    out["scrape_ms_p99"] = (round(scrape_s[min(len(scrape_s) - 1, int(0.99 * len(scrape_s)))]
                                  * 1000, 2) if scrape_s else None)
    results.put(out)
