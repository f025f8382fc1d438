"""Read a controller's /metrics as a client would (benchmarks and tests)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def samples(metrics_url: str, name: str, retry_s: float = 10.0) -> list[tuple[dict, float]]:
    """Every sample called `name` (labels, value). A scrape refused for load (503: the
    controller bounds scrapes) is asked again for up to `retry_s`."""
    deadline = time.monotonic() + retry_s
    while True:
        try:
            with urllib.request.urlopen(metrics_url, timeout=5) as reply:
                text = reply.read().decode()
            break
        except urllib.error.HTTPError as e:
            if e.code != 503 or time.monotonic() > deadline:
                raise
            time.sleep(min(1.0, float(e.headers.get("Retry-After", "0.2"))))
    return [(s.labels, s.value) for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == name]
