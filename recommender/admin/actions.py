"""What the editors' buttons in the admin do: review feedback, turn it into rules, re-embed, review tags.

Kept out of the admin classes so the same decisions can be scripted or tested
without a request, and so an admin action stays one line.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from recommender import tasks
from recommender.caching import bump_site_generation
from recommender.models import EditorialRule, Feedback, Item, ItemTag, ModelVersion


def mark_feedback_reviewed(feedback: QuerySet[Feedback], *, by: Any = None) -> int:
    """Mark new feedback as reviewed by ``by``; already handled feedback keeps its status."""
    return feedback.filter(status=Feedback.Status.NEW).update(
        status=Feedback.Status.REVIEWED, reviewed_by=by, reviewed_at=timezone.now()
    )


def add_item_rules(
    item_ids: Iterable[int], action: str, *, by: Any = None, placement: str = "", note: str = ""
) -> list[EditorialRule]:
    """Create an open-ended rule (``block`` or ``bury``) for each item that has no such rule in force.

    Rules apply from now on, in every placement unless one is given; an editor can
    narrow or end them in the rules admin.
    """
    if action not in (EditorialRule.Action.BLOCK, EditorialRule.Action.BURY):
        raise ValueError(f"Feedback can only block or bury items, not {action!r}")
    wanted = set(item_ids)
    existing = set(
        EditorialRule.objects.in_force(placement or "")
        .filter(action=action, item_id__in=wanted, placement=placement, ends_at__isnull=True)
        .values_list("item_id", flat=True)
    )
    rules = [
        EditorialRule(action=action, item_id=item_id, placement=placement, note=note[:200], created_by=by)
        for item_id in sorted(wanted - existing)
    ]
    created = EditorialRule.objects.bulk_create(rules)
    if created:
        bump_site_generation()  # bulk_create sends no post_save: cached lists would miss the new rules
    return created


@transaction.atomic
def act_on_feedback(feedback: QuerySet[Feedback], action: str, *, by: Any = None) -> list[EditorialRule]:
    """Block or bury the items the selected feedback is about, and mark that feedback actioned."""
    item_ids = set(feedback.values_list("item_id", flat=True))
    rules = add_item_rules(item_ids, action, by=by, note=f"{action} from feedback review")
    feedback.update(status=Feedback.Status.ACTIONED, reviewed_by=by, reviewed_at=timezone.now())
    return rules


def reembed_items(item_ids: Iterable[int]) -> int:
    """Forget the items' embedded hash so the embed task recomputes them, then enqueue it.

    The task only embeds items whose text changed since the last run; clearing
    ``embedded_hash`` is what makes an unchanged item count as changed.
    """
    ids = sorted(set(item_ids))
    updated = Item.objects.filter(pk__in=ids).update(embedded_hash="")
    if updated:
        transaction.on_commit(lambda: tasks.embed_items.delay(ids=ids))
    return updated


def review_tag_suggestions(item_tags: QuerySet[ItemTag], status: str) -> int:
    """Accept or reject automatic tag suggestions in bulk (editorial tags are left alone)."""
    if status not in (ItemTag.Status.ACCEPTED, ItemTag.Status.REJECTED):
        raise ValueError(f"A suggestion is accepted or rejected, not {status!r}")
    count = item_tags.filter(source=ItemTag.Source.AUTOMATIC).exclude(status=status).update(status=status)
    if count:
        bump_site_generation()  # tag rules and caps read accepted tags only
    return count


def start_training(kind: str) -> str:
    """Start a full training or a refresh; say what happened, in words, for the editor.

    A full training gets its ``ModelVersion`` (status queued) before the task is
    sent, so the registry shows it and its progress at once. With an eager Celery
    (the demo) the job runs here and the message names its outcome.
    """
    queued = None
    if kind == ModelVersion.Kind.TRAIN:
        queued = ModelVersion.objects.create(
            name=f"train-{timezone.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        )
    try:
        result = tasks.train_model.delay(version_id=queued.pk) if queued else tasks.refresh_model.delay()
    except Exception as exc:  # broker down, or the eager run failed: the queued version must not wait forever
        if queued is not None:
            ModelVersion.objects.filter(pk=queued.pk, status=ModelVersion.Status.QUEUED).update(
                status=ModelVersion.Status.FAILED, error=str(exc), finished_at=timezone.now()
            )
        raise
    label = "Training" if queued else "Refresh"
    if not tasks.runs_eagerly():  # a worker will run it; no result backend is needed to say so
        return f"{label} queued ({queued.name if queued else f'task {result.id}'}); progress shows below."
    version = ModelVersion.objects.filter(pk=result.result).first() if result.result else None
    if version is None:
        reason = (
            ModelVersion.objects.get(pk=queued.pk).error if queued else "nothing new since the active model"
        )
        return f"{label} skipped: {reason or 'see the worker log'}."
    outcome = "now active" if version.is_active else f"not activated: {version.gate_reason or version.status}"
    return f"{label} finished: {version.name} ({outcome})."
