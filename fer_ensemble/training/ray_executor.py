"""Train a zoo on Ray: each member is a Ray task, on one machine or across a cluster.

The driver (the `train-all --ray` process) holds the run directory's lock and is its only writer.
It puts the data set into Ray's object store once and submits one task per member, a member with
`init_from` only once its source has finished; the source's weights and sidecar travel to that
task through the object store, so the nodes share no file system. A task trains with the ordinary
`train_model`, in a scratch folder on its node. After every epoch it posts the member's
in-progress state (what `train_model` keeps in RUN/.work/NAME: the BackupAndRestore backup, best
checkpoint, history and random state) to a mailbox actor, from which the driver takes it into
RUN/.work/NAME about once a second; at the end the task returns the artifacts, which the driver
writes atomically, sidecar last, adding where the member trained (`"executor": "ray"` and a
`"ray"` record: node, CPUs, GPU fraction, attempts, wall time).

A member whose worker or node dies (SIGKILL, the OOM killer, a lost node) is submitted again by
the driver with the last state it received, so it resumes from its last finished epoch; since
RUN/.work/ holds the same state, a killed driver resumes like any `train-all`. (Ray's own retry
would rerun the task with its first arguments, from the start.) Plain tasks and an actor, not
streaming tasks, so that Ray Client (ray:// addresses) can drive them too.

A member asks Ray for `cpus_per_member` CPUs and `gpus_per_member` GPUs; a fraction below 1 puts
several members on one GPU, and the task turns on TensorFlow's memory growth (JAX: no
preallocation, that fraction of the memory) before the framework touches the GPU, so members
sharing a card take what they use, not all of it.
"""
from __future__ import annotations

import io
import os
import shutil
import socket
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .._io import TEMP_NAME, atomic_dir, write_bytes, write_text
from ..data import FerData
from ..errors import FerEnsembleError, TrainingError
from ..models import ModelSpec, Zoo
from ..rundir import WORK_DIR, artifact_paths, lock_run, work_dir, write_sidecar
from .runner import ZooRun, sources_first, zoo_specs
from .trainer import TrainResult, reuse_finished

__all__ = ["RayOptions", "train_all_ray", "require_ray", "RAY_EXTRA"]

RAY_EXTRA = "pip install 'fer_ensemble[ray]'"


@dataclass(frozen=True)
class RayOptions:
    """Where and how a zoo's members run on Ray.

    address: "local" (start a Ray instance on this machine for the run), "auto" (join the cluster
    this machine belongs to: `ray start`), or a cluster address ("ray://head:10001", "head:6379").
    cpus_per_member / gpus_per_member: what each member's task asks Ray for (0.25 GPU puts four
    members on a card); gpus_per_member=None shares the GPUs Ray finds among the members that
    run at once (num_cpus / cpus_per_member of them: 1/N of the only GPU each for `--jobs N`).
    retries: how often a member whose worker or node died is started again.
    num_cpus / num_gpus: the CPUs and GPUs of a "local" instance (None: what Ray detects);
    `train-all --jobs N` is `local` with N CPUs, so N members train at once.
    """

    address: str = "local"
    cpus_per_member: float = 1.0
    gpus_per_member: float | None = 0.0
    retries: int = 3
    num_cpus: int | None = None
    num_gpus: float | None = None

    def __post_init__(self) -> None:
        if not self.address:
            raise TrainingError("--ray needs an address: local, auto, or ray://HOST:PORT")
        if not self.cpus_per_member > 0:
            raise TrainingError(f"--cpus-per-member must be above 0, got {self.cpus_per_member:g}")
        g = self.gpus_per_member
        if g is None and (self.address != "local" or self.num_cpus is None):
            raise TrainingError("sharing the GPUs among the members (gpus_per_member=None) needs a local Ray "
                                "instance with a set number of CPUs (train-all --jobs N)")
        if g is not None and (g < 0 or (g > 1 and g != int(g))):
            raise TrainingError(f"--gpus-per-member must be a fraction of one GPU (0 to 1) or a whole number "
                                f"of GPUs, got {g:g}")
        if self.retries < 0:
            raise TrainingError(f"--retries must be 0 or more, got {self.retries}")
        if self.address != "local" and (self.num_cpus is not None or self.num_gpus is not None):
            raise TrainingError(f"the CPUs and GPUs of a Ray cluster ({self.address}) are set where its nodes "
                                "start (ray start --num-cpus/--num-gpus), not by train-all")


def require_ray() -> None:
    """TrainingError saying how to install Ray where it is missing (cheap: nothing is imported)."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise TrainingError(f"train-all --jobs and --ray train the members as Ray tasks, and the ray package is "
                            f"not installed: {RAY_EXTRA}")


def _ray():
    """The ray module, or a TrainingError saying how to install it."""
    require_ray()
    import ray

    return ray


# ---------------------------------------------------------------- the driver
def train_all_ray(zoo: Zoo, data: FerData, run_dir: str | os.PathLike, *, options: RayOptions | None = None,
                  only: list[str] | None = None, overrides: dict | None = None, force: bool = False,
                  progress: bool = True, **train_kwargs) -> ZooRun:
    """Train every model of `zoo` (or those named in `only`) into `run_dir` as Ray tasks
    (`RayOptions`); extra keyword arguments (jit_compile, tensorboard, time_limit) go to
    train_model in each task. Finished members are skipped, as by `train_all`; a failed member
    is reported and the others still train; a file the driver cannot write stops the zoo.
    Uses the Ray instance this process already joined (ray.init), else connects as `options`
    says and disconnects at the end."""
    options = options or RayOptions()
    run_dir = Path(run_dir)
    specs = [spec.replace(**overrides) if overrides else spec for spec in zoo_specs(zoo, only)]
    data.check_splits()
    ray = _ray()
    with lock_run(run_dir, f"train-all --ray {options.address}", create=True):
        started, url = _connect(ray, options)
        try:
            if progress and url:
                print(f"Ray dashboard: {url}", flush=True)
            options = _share_gpus(ray, options)
            _check_resources(ray, options, started)
            return _Driver(ray, zoo, specs, data, run_dir, options, force, progress, train_kwargs).run()
        finally:
            if started:
                ray.shutdown()


def _connect(ray, options: RayOptions) -> tuple[bool, str | None]:
    """Join Ray as `options` says, unless this process already has. Returns (whether we connected,
    the dashboard's address when the cluster runs one)."""
    if ray.is_initialized():
        return False, None
    kwargs = {"log_to_driver": False}   # members' epochs go to RUN/logs/NAME.log instead
    if options.address == "local":
        kwargs.update(num_cpus=options.num_cpus, num_gpus=options.num_gpus)
    try:
        context = ray.init(address=options.address, **kwargs)
    except ConnectionError as e:
        raise TrainingError(f"--ray {options.address}: no Ray cluster to join ({e}); start one with "
                            "`ray start --head`, or use --ray local") from None
    url = getattr(context, "dashboard_url", None)
    return True, (url if not url or "://" in url else f"http://{url}")


def _share_gpus(ray, options: RayOptions) -> RayOptions:
    """`options` with gpus_per_member set: for None, the GPUs Ray found on this machine shared
    among the members that run at once (at most one GPU each), or 0 without GPUs."""
    if options.gpus_per_member is not None:
        return options
    gpus = ray.cluster_resources().get("GPU", 0)
    slots = max(1, int(options.num_cpus / options.cpus_per_member))
    share = min(1.0, int(1000 * gpus / slots) / 1000) if gpus else 0.0
    return replace(options, gpus_per_member=share)


def _check_resources(ray, options: RayOptions, local: bool) -> None:
    """A member that no node can hold would wait forever: on an instance this run started (it
    cannot grow) that is an error; on a cluster, whose autoscaler may add nodes, a warning."""
    need = {"CPU": options.cpus_per_member, "GPU": options.gpus_per_member}
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if any(all(res.get(k, 0) >= v for k, v in need.items() if v) for res in nodes):
        return
    have = "; ".join(f"{r.get('CPU', 0):g} CPUs, {r.get('GPU', 0):g} GPUs" for r in nodes) or "no nodes"
    message = (f"no node of the Ray cluster ({have}) has the {need['CPU']:g} CPUs and {need['GPU']:g} GPUs a "
               "member asks for; lower --cpus-per-member / --gpus-per-member, or add a node that has them")
    if local:
        raise TrainingError(message)
    print(f"warning: {message}; members wait until such a node joins", file=sys.stderr, flush=True)


@dataclass
class _Member:
    """A member being trained: its attempt and the last state the driver received."""

    spec: ModelSpec
    attempt: int
    snapshot: bytes | None
    epoch: int = 0


class _Mailbox:
    """A Ray actor that carries the tasks' epoch states and log lines to the driver, which takes
    them about once a second. (A streaming task would be the direct way, but Ray Client, for
    ray:// addresses, has no streaming tasks.)"""

    def __init__(self) -> None:
        self.states: dict = {}   # member -> (attempt, epoch, packed state): the latest only
        self.lines: list = []    # (member, attempt, line), in order

    def post(self, name: str, attempt: int, epoch: int, state: bytes, line: str) -> None:
        self.states[name] = (attempt, epoch, state)
        self.lines.append((name, attempt, line))

    def take(self) -> tuple[dict, list]:
        out = (self.states, self.lines)
        self.states, self.lines = {}, []
        return out


class _Driver:
    """Submits the members' tasks in dependency order, writes what they send, retries lost ones."""

    POLL_S = 1.0   # how often the driver takes the epoch states while members train

    def __init__(self, ray, zoo: Zoo, specs: list[ModelSpec], data: FerData, run_dir: Path, options: RayOptions,
                 force: bool, progress: bool, train_kwargs: dict):
        self.ray, self.zoo, self.specs, self.data, self.run_dir = ray, zoo, specs, data, run_dir
        self.options, self.force, self.progress, self.train_kwargs = options, force, progress, train_kwargs
        self.results: dict[str, TrainResult] = {}
        self.failures: dict[str, str] = {}
        self.running: dict = {}          # the task's ObjectRef -> _Member
        self.members: dict[str, _Member] = {}
        self.sources: dict = {}          # init_from source name -> ObjectRef of its files
        self.data_ref = self.task = self.mailbox = None   # made on the first submission
        self.t0 = time.perf_counter()

    def run(self) -> ZooRun:
        fingerprint = self.data.fingerprint()
        pending = []
        for spec in sources_first(self.specs):
            if self.force:
                shutil.rmtree(work_dir(self.run_dir, spec.name), ignore_errors=True)
            try:
                done = reuse_finished(spec, self.run_dir, fingerprint, self.force)
            except FerEnsembleError as e:
                self._fail(spec.name, str(e))
                continue
            if done is not None:
                self._finished(done, "(cached)")
            else:
                pending.append(spec)
        try:
            self._loop(pending)
        finally:
            for ref in self.running:   # the zoo stopped (a write failed, Ctrl-C): stop its tasks
                try:
                    self.ray.cancel(ref, force=True)
                except Exception:
                    pass
            if self.mailbox is not None:
                try:
                    self.ray.kill(self.mailbox)
                except Exception:
                    pass
        order = [s.name for s in self.specs]
        return ZooRun([self.results[n] for n in order if n in self.results],
                      {n: self.failures[n] for n in order if n in self.failures})

    def _loop(self, pending: list[ModelSpec]) -> None:
        names = {s.name for s in self.specs}
        while pending or self.running:
            for spec in list(pending):
                src = spec.init_from
                if src in self.failures:
                    pending.remove(spec)
                    self._fail(spec.name, f"its init_from {src!r} failed")
                elif not (src in names and src not in self.results):
                    pending.remove(spec)
                    self._submit(spec, attempt=1, snapshot=self._saved_state(spec.name))
            if not self.running:
                for spec in pending:   # unreachable with a valid zoo (no cycles); never wait forever
                    self._fail(spec.name, f"its init_from {spec.init_from!r} never finished")
                return
            ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=self.POLL_S)
            self._take_states()   # first: a lost member resumes from the last state its task sent
            for ref in ready:
                self._collect(ref)

    def _saved_state(self, name: str) -> bytes | None:
        """RUN/.work/NAME as sent to a task: an earlier interrupted run's state resumes there too."""
        work = work_dir(self.run_dir, name)
        return pack_dir(work) if (work / "state.json").exists() else None

    def _source(self, spec: ModelSpec):
        """The object-store copy of spec.init_from's weights and sidecar (put once per source)."""
        src = spec.init_from
        if src not in self.sources:
            paths = artifact_paths(self.run_dir, src)
            if not (paths["h5"].exists() and paths["json"].exists()):
                raise TrainingError(f"model {spec.name!r}: init_from {src!r}: {paths['h5']} and "
                                    f"{paths['json'].name} are needed; train {src!r} into {self.run_dir} first")
            self.sources[src] = self.ray.put({"name": src, "h5": paths["h5"].read_bytes(),
                                              "json": paths["json"].read_bytes()})
        return self.sources[src]

    def _start(self) -> None:
        """The data in the object store, the task's remote function and the mailbox, once."""
        ray, o = self.ray, self.options
        self.data_ref = ray.put(self.data)   # once: every task reads this copy
        # A GPU task gets a fresh worker each time (max_calls=1), so a finished member's GPU memory
        # is given back; Ray decides that from the options given here, not from .options().
        gpu = {"num_gpus": o.gpus_per_member, "max_calls": 1} if o.gpus_per_member else {}
        self.task = ray.remote(num_cpus=o.cpus_per_member, max_retries=0, **gpu)(_member_task)
        mailbox = ray.remote(num_cpus=0)(_Mailbox)
        try:   # beside the driver where it is in the cluster (not under Ray Client)
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
            mailbox = mailbox.options(scheduling_strategy=here)
        except Exception:
            pass
        self.mailbox = mailbox.remote()

    def _submit(self, spec: ModelSpec, attempt: int, snapshot: bytes | None) -> None:
        try:
            source = self._source(spec) if spec.init_from else None
        except TrainingError as e:
            self._fail(spec.name, str(e))
            return
        if self.task is None:
            self._start()
        o = self.options
        ref = self.task.options(name=f"train {spec.name}").remote(
            spec, self.data_ref, snapshot, source, self.train_kwargs, o.gpus_per_member, self.mailbox, attempt)
        self.running[ref] = self.members[spec.name] = _Member(spec, attempt, snapshot)

    def _take_states(self) -> None:
        """Keep each running member's latest epoch state in RUN/.work/NAME (replaced whole) and log
        its epochs; what a lost attempt sent late is dropped."""
        if self.mailbox is None:
            return
        states, lines = self.ray.get(self.mailbox.take.remote())
        for name, attempt, line in lines:
            if name in self.members and self.members[name].attempt == attempt:
                self._log(name, line)
        for name, (attempt, epoch, state) in states.items():
            m = self.members.get(name)
            if m is None or m.attempt != attempt or name in self.results:
                continue
            with atomic_dir(work_dir(self.run_dir, name)) as stage:
                unpack_dir(state, stage)
            m.snapshot, m.epoch = state, epoch

    def _collect(self, ref) -> None:
        """A member's task ended: write its artifacts, or report its error, or start it again."""
        ray, m = self.ray, self.running.pop(ref)
        try:
            art = ray.get(ref)
        except ray.exceptions.RayTaskError as e:   # the member's own error, raised in the task
            cause = e.cause if isinstance(e.cause, BaseException) else e
            if isinstance(cause, FerEnsembleError):
                self._fail(m.spec.name, str(cause))
            else:
                self._fail(m.spec.name, f"{cause.__class__.__name__}: {cause}", detail=str(e))
            return
        except _lost_worker_errors(ray) as e:
            self._retry(m, e)
            return
        self._write_member(m, art)

    def _retry(self, m: _Member, error: Exception) -> None:
        name, why = m.spec.name, error.__class__.__name__
        if m.attempt > self.options.retries:
            self._fail(name, f"its worker was lost {m.attempt} times ({why}); the last state is in "
                       f"{work_dir(self.run_dir, name)}, where the next train-all resumes")
            return
        start = f"epoch {m.epoch}" if m.snapshot else "the start"
        print(f"[zoo {self.zoo.name}] {name}: its worker was lost ({why}); starting it again from {start} "
              f"(attempt {m.attempt + 1} of {self.options.retries + 1})", file=sys.stderr, flush=True)
        self._log(name, f"worker lost ({why}): {str(error).splitlines()[0][:200]}")
        self._submit(m.spec, m.attempt + 1, m.snapshot)

    def _log(self, name: str, line: str) -> None:
        logs = self.run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{name}.log", "a") as fh:
            fh.write(line + "\n")

    def _write_member(self, m: _Member, art: dict) -> None:
        """The artifacts, written as train_model writes them: cache, history, weights, sidecar last."""
        name, o = m.spec.name, self.options
        paths = artifact_paths(self.run_dir, name)
        write_bytes(paths["preds.npz"], art["preds.npz"])
        write_text(paths["history.csv"], art["history.csv"])
        write_bytes(paths["h5"], art["h5"])
        if art.get("tensorboard"):
            with atomic_dir(self.run_dir / "tensorboard" / name) as stage:
                unpack_dir(art["tensorboard"], stage)
        where = {**art["where"], "cpus": o.cpus_per_member, "gpu_fraction": o.gpus_per_member,
                 "attempts": m.attempt, "finished_after_s": round(time.perf_counter() - self.t0, 2)}
        sidecar = {**art["sidecar"], "executor": "ray", "ray": where}
        write_sidecar(self.run_dir, name, sidecar)
        shutil.rmtree(work_dir(self.run_dir, name), ignore_errors=True)
        try:
            (self.run_dir / WORK_DIR).rmdir()
        except OSError:
            pass
        self._log(name, f"done on {where['hostname']} in {where['task_wall_time_s']:.0f}s")
        self._finished(TrainResult(name, sidecar), self._where_text(where))

    @staticmethod
    def _where_text(where: dict) -> str:
        gpu = f", {where['gpu_fraction']:g} GPU" if where["gpu_fraction"] else ""
        again = f", attempt {where['attempts']}" if where["attempts"] > 1 else ""
        return (f"on {where['hostname']} ({where['cpus']:g} CPU{gpu}) in {where['task_wall_time_s']:.0f}s"
                f"{again}, at {where['finished_after_s']:.0f}s")

    def _finished(self, result: TrainResult, note: str) -> None:
        self.results[result.name] = result
        self._progress(result.name, f"val {result.val_accuracy:.4f} {note}")

    def _fail(self, name: str, message: str, detail: str | None = None) -> None:
        self.failures[name] = message
        print(f"[{name}] failed: {detail or message}", file=sys.stderr, flush=True)
        self._progress(name, "failed")

    def _progress(self, name: str, status: str) -> None:
        if self.progress:
            done = len(self.results) + len(self.failures)
            print(f"[zoo {self.zoo.name}] {done}/{len(self.specs)} {name}: {status}", flush=True)


def _lost_worker_errors(ray) -> tuple[type[BaseException], ...]:
    """Ray's errors for a task whose process or node went away: the member is started again."""
    ex = ray.exceptions
    return tuple(getattr(ex, n) for n in ("WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError",
                                          "ObjectLostError", "OutOfMemoryError", "RaySystemError")
                 if hasattr(ex, n))


# ---------------------------------------------------------------- the task
def _member_task(spec: ModelSpec, data: FerData, snapshot: bytes | None, source: dict | None, train_kwargs: dict,
                 gpu_fraction: float, mailbox, attempt: int) -> dict:
    """A Ray task: train `spec` in a scratch folder, resuming from `snapshot` (a packed
    RUN/.work/NAME) and warm-starting from `source`'s files; posts each epoch's state to `mailbox`
    and returns the artifacts."""
    share_gpu(gpu_fraction)
    t0 = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix=f"fer-ensemble-{spec.name}-"))
    try:
        if snapshot:
            unpack_dir(snapshot, work_dir(scratch, spec.name))
        if source:
            src = artifact_paths(scratch, source["name"])
            src["h5"].write_bytes(source["h5"])
            src["json"].write_bytes(source["json"])
        from .trainer import train_model

        ship = _epoch_shipper(work_dir(scratch, spec.name), spec, mailbox, attempt)
        train_model(spec, data, scratch, progress=False, extra_callbacks=[ship], **train_kwargs)
        return _artifacts(scratch, spec.name, t0)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def share_gpu(fraction: float) -> None:
    """Let members that share a GPU take what they use: TensorFlow's memory growth, and for JAX
    no preallocation and `fraction` of the memory at most. Ray has set CUDA_VISIBLE_DEVICES to
    the task's GPU; this must run before the framework first touches it (a fresh worker: Ray
    starts one per GPU task). A task that asked for no GPU is kept off them: Ray leaves such a
    task the node's CUDA_VISIBLE_DEVICES, and TensorFlow would take a GPU nobody reserved."""
    if not fraction:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        return
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if fraction < 1:
        os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{0.95 * fraction:.3f}")
    if "tensorflow" in sys.modules:   # already imported here: set it through the API too
        import tensorflow as tf

        for gpu in tf.config.list_physical_devices("GPU"):
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except (RuntimeError, ValueError):   # already initialised: the environment decided
                pass


def _epoch_shipper(work: Path, spec: ModelSpec, mailbox, attempt: int):
    """A Keras callback (run after the trainer's own) that packs the member's in-progress state at
    each epoch's end and posts it, with the epoch's log line, to the driver's mailbox. Training
    goes on if the mailbox is gone (its node died): the member then resumes from an earlier epoch."""
    import keras
    import ray

    class ShipEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            stats = " ".join(f"{k}={logs[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy")
                             if k in logs)
            line = f"[{spec.name}] epoch {epoch + 1}/{spec.epochs} {stats} ({time.perf_counter() - self.t:.0f}s)"
            try:
                ray.get(mailbox.post.remote(spec.name, attempt, epoch + 1, pack_dir(work), line))
            except ray.exceptions.RayActorError:
                pass

    return ShipEpoch()


def _artifacts(scratch: Path, name: str, t0: float) -> dict:
    """What the driver writes into the run directory, and where the member trained."""
    import json

    import ray

    paths = artifact_paths(scratch, name)
    board = scratch / "tensorboard" / name
    ctx = ray.get_runtime_context()
    gpu_ids = ctx.get_accelerator_ids().get("GPU", [])
    return {"h5": paths["h5"].read_bytes(), "preds.npz": paths["preds.npz"].read_bytes(),
            "history.csv": paths["history.csv"].read_text(), "sidecar": json.loads(paths["json"].read_text()),
            "tensorboard": pack_dir(board) if board.is_dir() else None,
            "where": {"hostname": socket.gethostname(), "node_ip": ray.util.get_node_ip_address(),
                      "node_id": ctx.get_node_id(), "gpu_ids": [str(g) for g in gpu_ids], "pid": os.getpid(),
                      "task_wall_time_s": round(time.perf_counter() - t0, 2)}}


# ---------------------------------------------------------------- folders as bytes
def pack_dir(folder: Path) -> bytes:
    """The files under `folder` as an uncompressed tar (weights barely compress), without the
    backup's previous-epoch copies (*.bkp: only a write cut short needs them, and a packed state
    is never cut short) or temporary files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in sorted(Path(folder).rglob("*")):
            if p.is_file() and not p.name.endswith(".bkp") and not TEMP_NAME.match(p.name):
                tar.add(p, arcname=p.relative_to(folder).as_posix())
    return buf.getvalue()


def unpack_dir(blob: bytes, folder: Path) -> None:
    """Unpack `pack_dir`'s bytes into `folder`; only plain files inside it are accepted."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        for member in tar.getmembers():
            target = (folder / member.name).resolve()
            if not (member.isfile() or member.isdir()) or folder.resolve() not in target.parents:
                raise TrainingError(f"a member's packed state holds {member.name!r}, which is not a file "
                                    f"inside {folder}")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(folder, filter="data")
        else:  # pragma: no cover - Python before 3.10.12 / 3.11.4; names checked above
            tar.extractall(folder)
