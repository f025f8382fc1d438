"""What a training job sends across the DCI, and how fast it must go.

The model (sources in the README, "Planning a training job"):

- NCCL ring factors for n ranks (nccl-tests PERFORMANCE.md): all-reduce 2(n-1)/n;
  reduce-scatter, all-gather and all-to-all (n-1)/n; broadcast and reduce 1.
- Data parallel across M sites is a hierarchical all-reduce (reduce-scatter inside each
  site, ring all-reduce across sites, all-gather inside), S = parameters x
  bytes_per_gradient. With one ring (the job's `rings: 1`, NCCL's: every channel goes
  round in the same order) each site sends 2(M-1)/M x S per sync to its successor, one
  direction of each ring pair; with two counter-rotating rings (`rings: 2`), each
  all-reducing S/2, each direction carries 2(M-1)/M x S/2. With two sites each is the
  other's successor: S each way either way.
- DiLoCo syncs S' = parameters x bytes_per_parameter every `inner_steps` steps, over the
  same ring.
- A pipeline sends, per stage boundary that crosses sites, activations forward and
  gradients back: micro_batches x tokens x hidden x bytes_per_value per replica in each
  direction (twice that in all).
- The sync must finish within `overlap_s` plus the exposed time the utilization target
  allows, K x compute_s x (1/u - 1) for a sync every K steps; the latencies it waits for
  come off that window: a ring's 2(M-1) steps, each one hop; a chain's round trip over
  every stage boundary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .load import Job, needed_pairs

# What a training flow carries of a wavelength's client rate: RoCEv2 at a 4096-byte MTU
# wraps each payload in 82 bytes (Ethernet preamble and gap 20, header and FCS 18; IPv4 20;
# UDP 8; InfiniBand BTH 12; ICRC 4): 4096 / 4178 = 98.0 %. Planned wavelengths carry the
# required rate as goodput. (TCP at 1500 bytes, as on the emulation, gets 1448 / 1514 =
# 95.6 %: `dcilab train` measures it and predicts on it too.)
GOODPUT_OF_LINE_RATE = 4096 / (4096 + 82)

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
    """Bytes per sync on one site pair, each direction (a -> b is the ring's direction: with
    one ring of three or more sites, b -> a carries nothing)."""

    a: str
    b: str
    km: float
    bytes_ab: float
    bytes_ba: float

    @property
    def bytes_per_sync(self) -> float:
        """The busier direction: what the line system must carry (per step for a pipeline,
        which syncs every step)."""
        return max(self.bytes_ab, self.bytes_ba)

    @property
    def loaded_directions(self) -> int:
        """How many of its two directions carry the sync (one ring of three or more sites:
        one; two sites, two rings, a pipeline: both)."""
        return sum(1 for b in (self.bytes_ab, self.bytes_ba) if b > 0)


Pair = tuple[str, str]


@dataclass(frozen=True)
class JobTraffic:
    pairs: tuple[PairTraffic, ...]
    sync_every_steps: int          # K
    latency_hops: int              # one-way latencies of its own pair a sync waits for
    window_s: float                # overlap + allowed exposed time, before latency
    chain: bool = False            # a pipeline: stage boundaries one after another

    def pair(self, a: str, b: str) -> PairTraffic:
        return next(p for p in self.pairs if {p.a, p.b} == {a, b})

    def other_latency_s(self, one_way_s: Mapping[Pair, float], pair: Pair) -> float:
        """Latency beyond `pair`'s own hops that its transfer waits for: none in a ring
        (each of its steps crosses every pair at once); in a chain, every other stage
        boundary both ways (activations forward, gradients back)."""
        if not self.chain:
            return 0.0
        return 2 * sum(v for k, v in one_way_s.items() if k != pair)

    def latency_s(self, one_way_s: Mapping[Pair, float], pair: Pair) -> float:
        """Latency a sync on `pair` waits for: a ring's 2(M-1) hops of this pair (sized
        each with its own, every ring step lasts as long); a chain's sum of 2 x each
        boundary's one-way latency."""
        return self.latency_hops * one_way_s[pair] + self.other_latency_s(one_way_s, pair)


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
    m = len(job.site_names)
    chain = job.spec.across_sites == "pipeline"
    if chain:
        ab = ba = pipeline_bytes(job)
    elif m == 2:                 # each site is the other's successor, in every ring: S
        ab = ba = ring_factor("all-reduce", m) * sync_bytes(job)
    else:                        # each ring all-reduces its share in its own direction
        rings = job.spec.rings
        ab = ring_factor("all-reduce", m) * sync_bytes(job) / rings
        ba = ab if rings == 2 else 0.0
    pairs = tuple(PairTraffic(a, b, job.km(a, b), ab, ba) for a, b in needed_pairs(job.spec))
    return JobTraffic(pairs, sync_every(job), 2 if chain else 2 * (m - 1), window_s(job),
                      chain)


def offered_gbps(traffic: JobTraffic, capacity_gbps: Mapping[Pair, float]) -> float:
    """The whole sync at full capacity: every loaded direction of every pair, Gb/s."""
    return sum(gbps * traffic.pair(a, b).loaded_directions
               for (a, b), gbps in capacity_gbps.items())


def required_gbps(bytes_per_sync: float, window: float, latency_s: float) -> float | None:
    """Rate at which `bytes_per_sync` fits the window after the latencies it waits for;
    None if the latencies alone fill it."""
    transfer_s = window - latency_s
    if transfer_s <= 0:
        return None
    return bytes_per_sync * 8 / transfer_s / 1e9
