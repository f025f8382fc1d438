"""Planning the DCI of a multi-site training job: its traffic, the cheapest optics that
carry it in time, cost, power and predicted step time. Pure but for `read_job`, which
reads a job file (the CLI writes the outputs)."""

from .fabric_out import fabric_yaml
from .hardware import NoFeasibleChoice
from .load import Job, JobError, parse_job, read_job
from .planner import JobPlan, plan_job

__all__ = ["Job", "JobError", "JobPlan", "NoFeasibleChoice", "fabric_yaml", "parse_job",
           "plan_job", "read_job"]
