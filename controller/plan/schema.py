"""The job file's schema: a training job spread over sites, and what it may spend.

Unknown fields are an error everywhere, as in fabric files. Checks across fields (site
names in `distances_km`, the fields each parallelism needs) live in `load.py`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..fabric.schema import NAME_PATTERN
from ..optics import DEFAULT_CATALOG


# Beyond these a value is a typo, not a job: bounded so that no figure overflows.
MAX_PARAMETERS = 1e16          # 100 x the 100T-parameter models of the founding report
MAX_BYTES_PER_VALUE = 16
MAX_GPUS = 10_000_000
MAX_STEP_S = 86_400.0          # a day per step
MAX_COUNT = 1_000_000_000
MAX_KM = 40_000.0              # once round the Earth
MAX_FLOWS_PER_PAIR = 64          # a sync's flows per site pair (NCCL channels)
MAX_PRICE_USD = 1e8            # per module or transponder
MAX_POWER_W = 1e5
MAX_WDM_RATE_GBPS = 10_000
# Under 1 % compute utilization is no training plan; nearer 0 the sync window 1/u grows
# without bound (1e-310 gave an infinite window, and `--json` printed Infinity).
MIN_COMPUTE_UTILIZATION = 0.01



# Checked with the other fields (every problem of the fields in one pass), not with the
# sites after them: an ML-infra tester's -5 km came only once the rest was right.
MIN_KM = 0.1     # a fibre route between two sites; 1e-300 km was planned (a tester's)


def _over_zero_km(km: float) -> float:
    if not km >= MIN_KM:
        raise ValueError(f"must be at least {MIN_KM:g} km, as a fibre route between two "
                         f"sites is")
    return km


def _known_module(name: str) -> str:
    if name not in DEFAULT_CATALOG:
        raise ValueError(f"unknown module {name!r}; valid modules are "
                         f"{', '.join(DEFAULT_CATALOG.names)}")
    return name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class ModelSpec(_Strict):
    parameters: float = Field(gt=0, le=MAX_PARAMETERS, description="trainable parameters")
    bytes_per_gradient: float = Field(gt=0, le=MAX_BYTES_PER_VALUE,
                                      description="2 for bf16 gradients, 4 for fp32")


class SiteSpec(_Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=48)
    gpus: int = Field(ge=1, le=MAX_GPUS)


class StepSpec(_Strict):
    compute_s: float = Field(gt=0, le=MAX_STEP_S, description="compute time of one training step")
    overlap_s: float = Field(default=0.0, ge=0, le=MAX_STEP_S,
                             description="compute during which the sync can run (e.g. backward)")


class DilocoSpec(_Strict):
    inner_steps: int = Field(ge=1, le=MAX_COUNT, description="H: local steps between two syncs")
    bytes_per_parameter: float = Field(gt=0, le=MAX_BYTES_PER_VALUE,
                                       description="1 for int8 pseudo-gradients")


class PipelineSpec(_Strict):
    micro_batches: int = Field(ge=1, le=MAX_COUNT)
    tokens_per_micro_batch: int = Field(ge=1, le=MAX_COUNT,
                                        description="sequence length x micro-batch size")
    hidden: int = Field(ge=1, le=MAX_COUNT)
    bytes_per_value: float = Field(gt=0, le=MAX_BYTES_PER_VALUE)
    replicas: int = Field(default=1, ge=1, le=MAX_COUNT,
                          description="data-parallel pipeline copies")


class ModuleChoice(_Strict):
    """A catalog module's price, power and whether the plan may use it."""

    price_usd: float | None = Field(default=None, ge=0, le=MAX_PRICE_USD)
    # Above 0, as in a fabric file's `modules:`, which `--fabric-out` writes these into.
    power_w: float | None = Field(default=None, gt=0, le=MAX_POWER_W)
    available: bool = True


class WdmSpec(_Strict):
    """Classic WDM transponders, for the side-by-side comparison (defaults are assumptions)."""

    rate_gbps: int | None = Field(default=None, ge=1, le=MAX_WDM_RATE_GBPS)
    price_usd: float | None = Field(default=None, ge=0, le=MAX_PRICE_USD,
                                    description="per transponder (one end)")
    power_w: float | None = Field(default=None, ge=0, le=MAX_POWER_W,
                                  description="per transponder (one end)")


class JobSpec(_Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    model: ModelSpec
    sites: list[SiteSpec] = Field(min_length=2, max_length=64, description="in ring order")
    # {site: {other site: km}}, each pair once, in either order.
    distances_km: dict[str, dict[str, Annotated[float, Field(le=MAX_KM),
                                                AfterValidator(_over_zero_km)]]]
    across_sites: Literal["data", "pipeline"] = "data"
    sync: Literal["allreduce", "diloco"] = "allreduce"
    diloco: DilocoSpec | None = None
    pipeline: PipelineSpec | None = None
    step: StepSpec
    # 1: the sync hides entirely in step.overlap_s (which must then be > 0)
    target_compute_utilization: float = Field(ge=MIN_COMPUTE_UTILIZATION, le=1)
    flows_per_pair: int = Field(default=8, ge=1, le=MAX_FLOWS_PER_PAIR,
                                description="parallel flows per site pair (NCCL channels)")
    # 1: NCCL's rings, every channel in the same order (NVIDIA/nccl#578, #1367), so three
    # or more sites load one direction of each ring pair; 2: a schedule that runs half
    # the buffer each way round (a bidirectional ring all-reduce, e.g. IBing, ACM TACO
    # 2025), loading both directions with half as much.
    rings: int = Field(default=1, ge=1, le=2, strict=True,   # true and 2.0 are no count
                       description="all-reduce rings across the sites: 1, one way round "
                                   "(NCCL); 2, one each way round")
    modules: dict[Annotated[str, AfterValidator(_known_module)], ModuleChoice] = Field(
        default_factory=dict)
    wdm: WdmSpec = WdmSpec()
