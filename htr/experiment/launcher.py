"""Where a study's runs run as scheduler jobs: one submitit job per run (Slurm, or submitit's local
executor on this machine), each requeued on a time-out or preemption to resume from its last.ckpt.

The launcher knows nothing of what a run is: it is given, per run, a name and a picklable ``work``
callable (train + evaluate, writing the run's results) and a ``stop`` callable that ends the
run's training at a batch boundary. submitit calls :meth:`RunJob.checkpoint` from its signal
handler when the scheduler signals the job (``signal_delay_s`` before the time limit, or on
preemption): the training stops with its last epoch's ``last.ckpt`` whole, the job requeues
itself with the same work, and the requeued job's training resumes from that checkpoint.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import submitit

# submitit is imported where jobs are made: the local launcher runs without it installed.
log = logging.getLogger("htr.study")


@dataclass(frozen=True)
class SlurmSettings:
    """What each run's job asks the scheduler for: the study config's ``slurm:`` block."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    gpus_per_node: int = 1
    cpus_per_task: int = 8
    mem_gb: float = 32
    timeout_min: int = 60
    signal_delay_s: int = 120  # signalled this long before the time limit: the training stops, the job requeues
    max_timeouts: int = 3  # requeues after a time-out (a preempted job is always requeued)
    setup: list[str] = field(default_factory=list)  # shell lines run before each job (module load ..., source .venv/bin/activate)
    additional: dict[str, Any] = field(default_factory=dict)  # any other sbatch option, e.g. {exclude: node12}
    folder: str | None = None  # job scripts, pickles and logs; default <run_dir>/submitit/%j (%j: the job id)
    cluster: Literal["slurm", "local"] | None = None  # None: Slurm where it is installed, else this machine

    @classmethod
    def from_config(cls, spec: Any) -> SlurmSettings:
        """The settings from the parsed ``slurm`` namespace (or a SlurmSettings)."""
        return spec if isinstance(spec, cls) else cls(**{k: getattr(spec, k) for k in cls.__dataclass_fields__})

    def executor(self, default_folder: Path) -> submitit.AutoExecutor:
        """A submitit executor with these resources (Slurm's partition/account/... only reach Slurm)."""
        import submitit

        executor = submitit.AutoExecutor(
            folder=self.folder or default_folder / "%j", cluster=self.cluster,
            slurm_max_num_timeout=self.max_timeouts, local_max_num_timeout=self.max_timeouts,
        )
        slurm = {f"slurm_{k}": v for k, v in asdict(self).items() if k in ("partition", "account", "qos", "constraint", "signal_delay_s", "setup") and v}
        executor.update_parameters(
            timeout_min=self.timeout_min, gpus_per_node=self.gpus_per_node, cpus_per_task=self.cpus_per_task, mem_gb=self.mem_gb,
            nodes=1, tasks_per_node=1, **slurm, **({"slurm_additional_parameters": dict(self.additional)} if self.additional else {}),
        )
        return executor


def preemption_signal() -> signal.Signals:
    """The signal submitit's jobs get before a time-out or on preemption (USR2 unless SUBMITIT_PREEMPT_SIGNAL says otherwise)."""
    import submitit

    return signal.Signals[f"SIG{submitit.JobEnvironment.USR_SIG}"]


class RunJob:
    """One run as a submitit job: ``work(ignore_signal=...)`` does the run (the training it starts
    ignores the scheduler's signal, which Slurm sends to every process of the job); on that signal
    submitit calls :meth:`checkpoint`: ``stop(grace_s)`` ends the training and the job is requeued
    with the same work (what ``submitit.helpers.Checkpointable`` does, without importing submitit here)."""

    def __init__(self, work: Callable[..., str], stop: Callable[[float], None], grace_s: float) -> None:
        self.work, self.stop, self.grace_s = work, stop, grace_s

    def __call__(self) -> str:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        return self.work(ignore_signal=preemption_signal())

    def checkpoint(self) -> submitit.helpers.DelayedSubmission:
        from submitit.helpers import DelayedSubmission

        log.warning("job signalled (time-out or preemption): stopping the training at a batch boundary, then requeueing; the run resumes from its last.ckpt")
        self.stop(self.grace_s)
        return DelayedSubmission(self)  # the same job again


def submit_runs(settings: SlurmSettings, default_folder: Path, group: str, runs: dict[str, Callable[..., str]], stop: Callable[[float], None]) -> dict[str, submitit.Job]:
    """Submit one job per run (``runs``: name -> work) named ``<group>-<name>``; logs each job's id and log files."""
    executor = settings.executor(default_folder)
    jobs = {}
    for name, work in runs.items():
        executor.update_parameters(name=f"{group}-{name}")
        # Half the warning time to stop (a batch, then W&B's flush); the rest is the scheduler's margin.
        jobs[name] = job = executor.submit(RunJob(work, stop, settings.signal_delay_s / 2))
        log.info("%s: job %s (%s), log %s, errors %s", name, job.job_id, executor.cluster, job.paths.stdout, job.paths.stderr)
    return jobs


def wait_for(jobs: dict[str, submitit.Job]) -> list[str]:
    """Wait for every job; one line per job that did not finish, naming its error log."""
    from submitit.core.utils import UncompletedJobError

    failures = []
    for name, job in jobs.items():
        try:
            job.result()
            log.info("%s: done (job %s)", name, job.job_id)
        except UncompletedJobError as err:  # FailedJobError too: the job's own traceback is in its log
            reason = next((line for line in reversed(str(err).splitlines()) if line.strip()), "no reason given")
            failures.append(f"{name} (job {job.job_id}) did not finish: {reason.strip()[:300]}; see {job.paths.stderr}")
    return failures
