"""Training runs: database rows in, a gated ``ModelVersion`` with its artifact out.

The same code runs in a Celery worker, in eager mode (the demo) and from the
management commands. Its promises: one run at a time (``locks.training_lock``),
progress written to the version as it goes, the artifact fully stored *before*
the version points at it, and a run that dies (exception, time limit, SIGKILL)
ends up ``failed`` while the active version keeps serving.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from django.db.models import Max
from django.utils import timezone

from recommender.conf import recommender_settings
from recommender.ml.data import Event, histories_for_test, leave_one_out
from recommender.ml.embedder import get_embedder, vector_from_bytes
from recommender.models import Interaction, Item, ItemTag, ModelVersion
from recommender.training import artifacts, dataset, model_registry
from recommender.training.dataset import TrainingData
from recommender.training.locks import TrainingBusy, training_lock
from recommender.training.processes import ProcessGroup

if TYPE_CHECKING:
    from recommender.ml.data import UserSequence
    from recommender.ml.trainer import TrainConfig, TrainProgress

logger = logging.getLogger(__name__)

ProgressCallback = Callable[["TrainProgress"], None]
# Time kept free inside the task's hard limit to evaluate and store the artifact.
STORE_MARGIN_SECONDS = 300

__all__ = [
    "NotEnoughData",
    "TrainingBusy",
    "build_training_events",
    "evaluate_version",
    "fail_stale_runs",
    "make_config",
    "queue_version",
    "refresh_model",
    "train_model",
]


class NotEnoughData(RuntimeError):
    """Too few interactions to train on (``MIN_INTERACTIONS_TO_TRAIN``)."""


# -- the data set ---------------------------------------------------------------


def build_training_events(
    *, after_id: int | None = None, until_id: int | None = None, users: set[str] | None = None
) -> list[Event]:
    """Positive-weight interactions as ``Event`` rows, without people who opted out of personalization.

    All in memory: for small reads (a refresh's new events); a training run streams
    its data with ``dataset.load_training_data``.
    """
    return dataset.training_events(after_id=after_id, until_id=until_id, users=users)


def gate_holdout(
    known: Mapping[str, tuple[float, str]], sequences: Mapping[str, UserSequence]
) -> dict[str, tuple[UserSequence, str, float]]:
    """(history, target, its time) of every identity whose last event is newer than all a version trained on.

    ``known`` holds each identity's last event (timestamp, item) up to that version's
    cursor. The new run holds each identity's last event out to choose its stopping
    point (``train``), so neither model learned these targets: the two are scored on
    the same events. A last event that only repeats the identity's last event up to
    the cursor (one collapsed step) is not new, and is left out.
    """
    holdout = {}
    for user, seq in sequences.items():
        if len(seq) < 3:  # train() holds out only sequences of three events or more
            continue
        before = known.get(user)
        if before is not None and (seq.timestamps[-1] <= before[0] or seq.items[-1] == before[1]):
            continue
        holdout[user] = (seq.head(-1), seq.items[-1], seq.timestamps[-1])
    return holdout


def _content_and_tags() -> tuple[dict[str, np.ndarray], dict[str, list[str]], str | None]:
    """Content vectors of the current embedder and accepted tags, keyed by ``str(Item.pk)``.

    The vectors are read in half precision, the precision the model stores them in
    (model.CONTENT_DTYPE): the same model, and 0.77 GB instead of 1.5 GB at 1M items x 384.
    """
    name = get_embedder(recommender_settings.EMBEDDER, recommender_settings.EMBED_DEVICE).name
    content = {
        str(pk): vector_from_bytes(bytes(raw), dim, np.float16)
        for pk, raw, dim in Item.objects.filter(embedding_model=name, embedding__isnull=False)
        .exclude(embedding_dim=None)
        .values_list("pk", "embedding", "embedding_dim")
        .iterator(chunk_size=2000)
    }
    tags: dict[str, list[str]] = {}
    for item_id, tag in ItemTag.objects.filter(status=ItemTag.Status.ACCEPTED).values_list(
        "item_id", "tag__name"
    ):
        tags.setdefault(str(item_id), []).append(tag)
    return content, tags, (name if content else None)


def _publication_times() -> dict[str, float]:
    """Every dated item's publication time (epoch seconds, the events' clock), keyed by ``str(Item.pk)``."""
    return {
        str(pk): at.timestamp()
        for pk, at in Item.objects.exclude(published_at=None).values_list("pk", "published_at").iterator(2000)
    }


def make_config(
    config: TrainConfig | Mapping[str, Any] | None = None, *, base: Mapping[str, Any] = ()
) -> TrainConfig:
    """``TrainConfig`` from settings (``TRAIN_CONFIG``, ``TRAIN_DEVICE``), ``base`` and the run's overrides.

    Without an explicit ``max_minutes`` the run gets a budget inside the task's hard
    time limit, so it stops early and still stores its best model rather than being killed.
    """
    # torch (~1 s, ~180 MB): imported only by processes that train or serve
    from recommender.ml.trainer import TrainConfig, check_overrides

    if isinstance(config, TrainConfig):
        return _gate_ready(config)
    values = {"device": recommender_settings.TRAIN_DEVICE, **recommender_settings.TRAIN_CONFIG, **dict(base)}
    values.update(config or {})
    check_overrides(values)
    if values.get("max_minutes") is None:
        values["max_minutes"] = max(
            1.0, (float(recommender_settings.TRAIN_TIME_LIMIT) - STORE_MARGIN_SECONDS) / 60
        )
    return _gate_ready(TrainConfig(**values))


def _gate_ready(config: TrainConfig) -> TrainConfig:
    """Refuse a sampled holdout: the gate scores the candidate on every reader's last event."""
    if config.holdout_users is not None:
        raise ValueError(
            "holdout_users is for benchmarks only: the promotion gate scores a new model on every "
            "reader's last event, so training must hold all of them out (leave holdout_users unset)"
        )
    return config


# -- runs -----------------------------------------------------------------------


class _ProgressRecorder:
    """Writes epoch, loss, validation NDCG@10 and ETA to the version, at most every few seconds."""

    def __init__(self, version: ModelVersion, extra: ProgressCallback | None) -> None:
        self.version = version
        self.extra = extra
        self.history: list[dict] = []
        self.written_at = float("-inf")

    def __call__(self, p: TrainProgress) -> None:
        entry = {
            "epoch": p.epoch,
            "epochs": p.epochs,
            "loss": p.loss,
            "val_ndcg@10": p.val_ndcg10,
            "eta_seconds": p.eta_seconds,
            "at": timezone.now().isoformat(),
        }
        self.history.append(entry)
        now = time.monotonic()
        if now - self.written_at >= float(recommender_settings.PROGRESS_WRITE_SECONDS) or p.epoch >= p.epochs:
            ModelVersion.objects.filter(pk=self.version.pk).update(progress=entry, history=self.history)
            self.written_at = now
        if self.extra is not None:
            self.extra(p)


def _new_version(kind: str, parent: ModelVersion | None = None) -> ModelVersion:
    name = f"{kind}-{timezone.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    return ModelVersion.objects.create(name=name, kind=kind, parent=parent)


def queue_version(version: ModelVersion | int | None, *, task_id: str = "") -> ModelVersion:
    """The queued version a run will fill (a new one unless given): runs in other processes need its id."""
    found = _resolve_version(version) or _new_version(ModelVersion.Kind.TRAIN)
    if task_id and found.task_id != task_id:
        found.task_id = task_id
        found.save(update_fields=["task_id"])
    return found


def _resolve_version(version: ModelVersion | int | None) -> ModelVersion | None:
    if version is None or isinstance(version, ModelVersion):
        return version
    return ModelVersion.objects.get(pk=version)


def _refuse(version: ModelVersion | None, exc: Exception) -> None:
    """A queued version that cannot run (busy, no data) is closed as failed with the reason."""
    if version is not None:
        ModelVersion.objects.filter(pk=version.pk).update(
            status=ModelVersion.Status.FAILED, error=str(exc), finished_at=timezone.now()
        )


def fail_stale_runs(*, exclude: ModelVersion | None = None) -> int:
    """Mark "running" versions failed; call only while holding the training lock (no run is alive then).

    Their process died without a word (SIGKILL, OOM, machine lost). Any files the
    run stored were never referenced by a version, and are deleted.
    """
    stale = ModelVersion.objects.filter(status=ModelVersion.Status.RUNNING)
    if exclude is not None:
        stale = stale.exclude(pk=exclude.pk)
    count = 0
    for version in stale:
        ModelVersion.objects.filter(pk=version.pk, status=ModelVersion.Status.RUNNING).update(
            status=ModelVersion.Status.FAILED,
            error="The worker running this training stopped without finishing (killed or lost).",
            finished_at=timezone.now(),
        )
        artifacts.delete_stored_artifact(f"{recommender_settings.ARTIFACT_PREFIX.rstrip('/')}/{version.name}")
        logger.warning("marked stale training run %s as failed", version.name)
        count += 1
    return count


def train_model(
    *,
    config: TrainConfig | Mapping[str, Any] | None = None,
    kind: str = ModelVersion.Kind.TRAIN,
    version: ModelVersion | int | None = None,
    progress: bool | ProgressCallback = True,
    activate: bool | None = None,
    task_id: str = "",
) -> ModelVersion | None:
    """Train a new model version from all interactions; activate it when it passes the gate.

    Under ``torchrun`` (``processes``) only rank 0 does all this and returns the
    version; the other ranks train beside it and return None.

    ``version`` reuses a queued version (created by the API or admin); otherwise one is
    created. ``progress`` True records progress in the database, a callable also gets
    every epoch (progress bars). ``activate`` None applies the gate, True skips it,
    False never activates. Raises ``TrainingBusy`` or ``NotEnoughData`` before training.
    """
    group = ProcessGroup.join(make_config(config).device)
    if group is not None and group.rank != 0:
        group.follow()  # rank 0 reads, records and stores; this rank only trains beside it
        group.close()
        return None
    version = _resolve_version(version)
    try:
        with training_lock():
            fail_stale_runs(exclude=version)
            cursor = _event_cursor()
            active = ModelVersion.objects.active()
            data = dataset.load_training_data(until_id=cursor, known_until=_cursor_of(active))
            minimum = int(recommender_settings.MIN_INTERACTIONS_TO_TRAIN)
            if data.rows < minimum:
                raise NotEnoughData(f"{data.rows} usable interactions, {minimum} needed to train")
            version = version or _new_version(kind)
            return _run(
                version,
                make_config(config),
                data.sequences,
                cursor,
                progress,
                activate,
                task_id,
                rival=_Rival.of(active, data),
                group=group,
            )
    except (TrainingBusy, NotEnoughData) as exc:
        _refuse(version, exc)
        raise
    finally:
        if group is not None:
            group.close()


def refresh_model(
    *,
    config: TrainConfig | Mapping[str, Any] | None = None,
    progress: bool | ProgressCallback = True,
    task_id: str = "",
) -> ModelVersion | None:
    """Continue the active model on what happened since it was trained (and on new items).

    Only identities with new interactions are trained on, each with its full recent
    history, for a few epochs (``REFRESH_CONFIG``). Without an active model this is
    a full training; with nothing new it returns None.
    """
    active = ModelVersion.objects.active()
    if active is None:
        return train_model(config=config, progress=progress, task_id=task_id)
    with training_lock():
        fail_stale_runs()
        since = active.data_summary.get("last_interaction_id")
        cursor = _event_cursor()
        fresh = build_training_events(after_id=since, until_id=cursor)
        if not fresh:
            logger.info("no new interactions since %s: nothing to refresh", active.name)
            return None
        data = dataset.load_training_data(
            users={e.user for e in fresh}, until_id=cursor, known_until=_cursor_of(active)
        )
        sequences = {u: s for u, s in data.sequences.items() if len(s) >= 2}
        if not sequences:
            return None
        base = make_config(config, base=recommender_settings.REFRESH_CONFIG)
        # Read before the version exists: a bad artifact leaves no trace.
        previous = artifacts.load_stored_artifact(active)
        version = _new_version(ModelVersion.Kind.REFRESH, parent=active)
        rival = _Rival.of(active, TrainingData(sequences, data.rows, data.known))
        return _run(
            version, base, sequences, cursor, progress, None, task_id, resume_from=previous, rival=rival
        )


class _Rival:
    """The active version, and the held-out events a new run is compared with it on."""

    def __init__(self, version: ModelVersion, holdout: dict[str, tuple[UserSequence, str, float]]) -> None:
        self.version = version
        self.holdout = holdout

    @classmethod
    def of(cls, active: ModelVersion | None, data: TrainingData) -> _Rival | None:
        if active is None:
            return None
        # A version from before cursors: nothing is known to be newer than what it learned.
        known = _cursor_of(active) is not None
        return cls(active, gate_holdout(data.known, data.sequences) if known else {})

    def score_rival(self, content: Mapping[str, Any], published: Mapping[str, float]) -> dict[str, Any]:
        """The comparison record with the rival's score, {} when there is nothing to compare on.

        Items published since the rival was trained are added from their content, as
        serving does (``model_store``), so the rival is scored as it would serve.
        """
        if not self.holdout:
            return {}
        try:
            rec = artifacts.load_stored_artifact(self.version)
        except Exception:
            logger.exception("could not load %s to compare a new version with it", self.version.name)
            return {}
        if rec.config.content_dim:
            new = {i: v for i, v in content.items() if i not in rec}
            rec.add_items(new, published={i: published[i] for i in new if i in published})
        return {
            "active_version": self.version.name,
            "active_cursor": self.version.data_summary.get("last_interaction_id"),
            "users": len(self.holdout),
            "events": sum(len(h) + 1 for h, _, _ in self.holdout.values()),
            "active": _score_on(rec, self.holdout),
        }


def _score_on(rec: Any, holdout: Mapping[str, tuple[UserSequence, str, float]]) -> dict[str, float]:
    """NDCG@10 and HR@10 of ``rec`` on (history, target, time) triples, full ranking, asked at each time."""
    # torch (~1 s, ~180 MB): imported only by processes that train or serve
    from recommender.ml.metrics import evaluate

    found = evaluate(
        rec,
        {u: h for u, (h, _, _) in holdout.items()},
        {u: t for u, (_, t, _) in holdout.items()},
        at={u: at for u, (_, _, at) in holdout.items()},
    )
    return {"ndcg@10": float(found.get("ndcg@10", 0.0)), "hr@10": float(found.get("hr@10", 0.0))}


def _cursor_of(version: ModelVersion | None) -> int | None:
    """The newest interaction id a version trained on (None: no version, or one from before cursors)."""
    return version.data_summary.get("last_interaction_id") if version is not None else None


def _event_cursor() -> int | None:
    """The newest interaction id, read *before* the events: the run trains on exactly the rows up to it.

    Read after them, an event written in between would be past the cursor the next
    refresh starts from, yet missing from this run: skipped forever.
    """
    return Interaction.objects.aggregate(last=Max("pk"))["last"]


def _run(
    version: ModelVersion,
    config: TrainConfig,
    sequences: dict[str, UserSequence],
    last_id: int | None,
    progress: bool | ProgressCallback,
    activate: bool | None,
    task_id: str,
    resume_from: Any = None,
    rival: _Rival | None = None,
    group: ProcessGroup | None = None,
) -> ModelVersion:
    """Train, store, point the version at the artifact, then gate. Any failure leaves it ``failed``.

    With a ``rival`` (the active version), both are scored on its held-out events:
    the rival before training, the candidate once its stopping point is chosen and
    before it learns those events (``train(before_refit=...)``).
    """
    # torch (~1 s, ~180 MB): imported only by processes that train or serve
    from recommender.ml.metrics import popularity_baseline
    from recommender.ml.trainer import train

    version.status = ModelVersion.Status.RUNNING
    version.config = dataclasses.asdict(config)
    version.started_at = timezone.now()
    version.task_id = task_id or version.task_id
    version.error = ""
    version.save(update_fields=["status", "config", "started_at", "task_id", "error"])
    stored = ""
    try:
        content, tags, embedder_name = _content_and_tags()
        published = _publication_times()
        comparison = rival.score_rival(content, published) if rival is not None else {}
        recorder = _ProgressRecorder(version, progress if callable(progress) else None)

        def score_candidate(chosen: Any) -> None:
            if comparison:
                comparison["candidate"] = _score_on(chosen, rival.holdout)

        if group is not None:  # the other ranks train on exactly these inputs
            group.send(
                {"sequences": sequences, "config": config, "content": content or None, "tags": tags or None,
                 "embedder_name": embedder_name, "resume_from": resume_from, "published": published or None}
            )  # fmt: skip
        result = train(
            sequences,
            config,
            content=content or None,
            tags=tags or None,
            embedder_name=embedder_name,
            progress=recorder if progress else None,
            resume_from=resume_from,
            before_refit=score_candidate,
            published=published or None,
        )
        held = {u: s.head(-1) for u, s in sequences.items() if len(s) >= 3}
        baseline = popularity_baseline(held, held, {u: sequences[u].items[-1] for u in held})
        metrics = {**result.metrics, "val_pop_ndcg@10": baseline.get("ndcg@10", 0.0)}
        stored, checksum = artifacts.store_artifact(version.name, result.recommender)
        version.artifact_name, version.checksum = stored, checksum
        version.metrics = metrics
        version.gate_comparison = comparison if "candidate" in comparison else {}
        version.history = result.history
        version.device = result.device
        version.progress = {**recorder.history[-1], "eta_seconds": 0} if recorder.history else {}
        version.data_summary = {
            "users": len(sequences),
            "items": len(result.recommender.item_ids),
            "events": sum(len(s) for s in sequences.values()),
            "epochs_run": result.epochs_run,
            "seconds": round(result.seconds, 2),
            "processes": group.size if group is not None else 1,
            "last_interaction_id": last_id,
        }
        version.status = ModelVersion.Status.SUCCEEDED
        version.finished_at = timezone.now()
        version.save()
    except BaseException as exc:
        logger.exception("training run %s failed", version.name)
        try:
            ModelVersion.objects.filter(pk=version.pk).update(
                status=ModelVersion.Status.FAILED,
                error=f"{type(exc).__name__}: {exc}",
                finished_at=timezone.now(),
                artifact_name="",
                checksum="",
            )
            if stored:
                artifacts.delete_stored_artifact(stored)
        except Exception:  # the database itself may be what failed; the next run's fail_stale_runs closes it
            logger.exception("could not record the failure of %s", version.name)
        raise
    logger.info("trained %s in %.1fs on %s: %s", version.name, result.seconds, result.device, version.metrics)
    if activate is None:
        model_registry.gate_and_activate(version)
    elif activate:
        version.gate_reason = "activated without the gate"
        version.save(update_fields=["gate_reason"])
        model_registry.activate(version, by="training (gate skipped)")
    return version


# -- evaluation -----------------------------------------------------------------


def evaluate_version(version: ModelVersion | int | str | None = None) -> dict[str, Any]:
    """Test metrics of a version (default: the active one) and of the popularity baseline on current data.

    Leave-one-out on today's interactions: each identity's last event is the target,
    everything before it the history.
    """
    # torch (~1 s, ~180 MB): imported only by processes that train or serve
    from recommender.ml.metrics import evaluate, popularity_baseline

    if version is None:
        version = ModelVersion.objects.active()
        if version is None:
            raise model_registry.ModelRegistryError("No active model version")
    else:
        version = model_registry.get_version(version)
    split = leave_one_out(dataset.load_training_data().sequences)
    histories = histories_for_test(split)
    rec = artifacts.load_stored_artifact(version)
    return {
        "version": version.name,
        "model": evaluate(rec, histories, split.test),
        "popularity": popularity_baseline(split.train, histories, split.test),
    }
