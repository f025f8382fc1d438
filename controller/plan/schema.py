"""The job file's schema: a training job spread over sites, and what it may spend.

Unknown fields are an error everywhere, as in fabric files. Checks across fields (site
names in `distances_km`, the fields each parallelism needs) live in `load.py`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ..fabric.schema import NAME_PATTERN


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


_EXPONENT = re.compile(r"^[0-9]+(\.[0-9]*)?[eE][+-]?[0-9]+$")


def _exponent_text(value: object) -> object:
    # YAML 1.1 reads 10e9 and 1.0e9 as strings (it wants 1.0e+9); people write them for
    # parameter counts, so take them as the numbers they obviously are.
    if isinstance(value, str) and _EXPONENT.match(value.strip()):
        return float(value)
    return value


Count = Annotated[float, BeforeValidator(_exponent_text)]


class ModelSpec(_Strict):
    parameters: Count = Field(gt=0, description="trainable parameters")
    bytes_per_gradient: float = Field(gt=0, description="2 for bf16 gradients, 4 for fp32")


class SiteSpec(_Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=48)
    gpus: int = Field(ge=1)


class StepSpec(_Strict):
    compute_s: float = Field(gt=0, description="compute time of one training step")
    overlap_s: float = Field(default=0.0, ge=0,
                             description="compute during which the sync can run (e.g. backward)")


class DilocoSpec(_Strict):
    inner_steps: int = Field(ge=1, description="H: local steps between two syncs")
    bytes_per_parameter: float = Field(gt=0, description="1 for int8 pseudo-gradients")


class PipelineSpec(_Strict):
    micro_batches: int = Field(ge=1)
    tokens_per_micro_batch: int = Field(ge=1, description="sequence length x micro-batch size")
    hidden: int = Field(ge=1)
    bytes_per_value: float = Field(gt=0)
    replicas: int = Field(default=1, ge=1, description="data-parallel pipeline copies")


class ModuleChoice(_Strict):
    """A catalog module's price, power and whether the plan may use it."""

    price_usd: float | None = Field(default=None, ge=0)
    power_w: float | None = Field(default=None, ge=0)
    available: bool = True


class WdmSpec(_Strict):
    """Classic WDM transponders, for the side-by-side comparison (defaults are assumptions)."""

    rate_gbps: int | None = Field(default=None, ge=1)
    price_usd: float | None = Field(default=None, ge=0, description="per transponder (one end)")
    power_w: float | None = Field(default=None, ge=0, description="per transponder (one end)")


class JobSpec(_Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    model: ModelSpec
    sites: list[SiteSpec] = Field(min_length=2, max_length=64, description="in ring order")
    # {site: {other site: km}}, each pair once, in either order.
    distances_km: dict[str, dict[str, float]]
    across_sites: Literal["data", "pipeline"] = "data"
    sync: Literal["allreduce", "diloco"] = "allreduce"
    diloco: DilocoSpec | None = None
    pipeline: PipelineSpec | None = None
    step: StepSpec
    target_compute_utilization: float = Field(gt=0, lt=1)
    flows_per_pair: int = Field(default=8, ge=1, le=64,
                                description="parallel flows per site pair (NCCL channels)")
    modules: dict[str, ModuleChoice] = Field(default_factory=dict)
    wdm: WdmSpec = WdmSpec()
