"""Prometheus metrics of the controller: a collector over its snapshot, and event counters."""
