"""What a training job sends across the DCI, and how fast it must go.

The model (sources in the README, "Planning a training job"):

- NCCL ring factors for n ranks (nccl-tests PERFORMANCE.md): all-reduce 2(n-1)/n;
  reduce-scatter, all-gather and all-to-all (n-1)/n; broadcast and reduce 1.
- Data parallel across M sites is a hierarchical all-reduce (reduce-scatter inside each
  site, ring all-reduce across sites, all-gather inside), so each site sends
  2(M-1)/M x S bytes per sync to its ring successor, S = parameters x bytes_per_gradient.
- DiLoCo syncs S' = parameters x bytes_per_parameter every `inner_steps` steps, over the
  same ring.
- A pipeline sends, per stage boundary that crosses sites, activations forward and
  gradients back: micro_batches x tokens x hidden x bytes_per_value per replica in each
  direction (twice that in all).
- The sync must finish within `overlap_s` plus the exposed time the utilization target
  allows, K x compute_s x (1/u - 1) for a sync every K steps; the ring's 2(M-1) one-way
  latencies come off that window.
"""

from __future__ import annotations

from dataclasses import dataclass

from .load import Job, needed_pairs

COLLECTIVE_FACTORS = {
    "all-reduce": lambda n: 2 * (n - 1) / n,
    "reduce-scatter": lambda n: (n - 1) / n,
    "all-gather": lambda n: (n - 1) / n,
    "all-to-all": lambda n: (n - 1) / n,
    "broadcast": lambda n: 1.0,
    "reduce": lambda n: 1.0,
}


def ring_factor(collective: str, ranks: int) -> float:
    """Bytes each rank sends per byte of buffer (NCCL's bus-bandwidth factor)."""
    if ranks < 1:
        raise ValueError(f"a collective needs at least one rank, got {ranks}")
    return COLLECTIVE_FACTORS[collective](ranks)


@dataclass(frozen=True)
class PairTraffic:
    """Bytes per sync on one site pair, each direction (a -> b is the ring's direction)."""

    a: str
    b: str
    km: float
    bytes_ab: float
    bytes_ba: float

    @property
    def bytes_per_sync(self) -> float:
        """The busier direction: what the line system must carry."""
        return max(self.bytes_ab, self.bytes_ba)

    @property
    def loaded_directions(self) -> int:
        """How many of its two directions carry the sync (a pipeline's chain: one)."""
        return sum(1 for b in (self.bytes_ab, self.bytes_ba) if b > 0)


@dataclass(frozen=True)
class JobTraffic:
    pairs: tuple[PairTraffic, ...]
    sync_every_steps: int          # K
    ring_latencies: int            # one-way latencies a sync waits for: 2(M-1)
    window_s: float                # overlap + allowed exposed time, before latency

    def pair(self, a: str, b: str) -> PairTraffic:
        return next(p for p in self.pairs if {p.a, p.b} == {a, b})


def sync_bytes(job: Job) -> float:
    """Bytes of the buffer one sync reduces: S, or S' for DiLoCo."""
    spec = job.spec
    per = spec.diloco.bytes_per_parameter if spec.sync == "diloco" else spec.model.bytes_per_gradient
    return spec.model.parameters * per


def pipeline_bytes(job: Job) -> float:
    """Bytes per step per direction on a stage boundary (all replicas)."""
    p = job.spec.pipeline
    return p.micro_batches * p.tokens_per_micro_batch * p.hidden * p.bytes_per_value * p.replicas


def sync_every(job: Job) -> int:
    return job.spec.diloco.inner_steps if job.spec.sync == "diloco" else 1


def window_s(job: Job) -> float:
    """Time a sync may take: overlap_s + K x compute_s x (1/u - 1)."""
    spec = job.spec
    u = spec.target_compute_utilization
    return spec.step.overlap_s + sync_every(job) * spec.step.compute_s * (1.0 / u - 1.0)


def job_traffic(job: Job) -> JobTraffic:
    """Bytes per sync on every site pair the job crosses, and the window to send them in."""
    sites = job.site_names
    m = len(sites)
    pairs = []
    for a, b in needed_pairs(job.spec):
        if job.spec.across_sites == "pipeline":
            ab = ba = pipeline_bytes(job)
        else:
            ab = ring_factor("all-reduce", m) * sync_bytes(job)
            ba = ab if m == 2 else 0.0       # two sites: each is the other's successor
        pairs.append(PairTraffic(a, b, job.km(a, b), ab, ba))
    return JobTraffic(tuple(pairs), sync_every(job), 2 * (m - 1), window_s(job))


def required_gbps(bytes_per_sync: float, window: float, ring_latencies: int,
                  one_way_latency_s: float) -> float | None:
    """Rate at which `bytes_per_sync` fits the window after the ring's latencies; None if
    the latencies alone fill it."""
    transfer_s = window - ring_latencies * one_way_latency_s
    if transfer_s <= 0:
        return None
    return bytes_per_sync * 8 / transfer_s / 1e9
