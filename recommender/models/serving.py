"""What was served and the editorial and personal settings that shape it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from recommender.models.owned import OwnedQuerySet


class RecommendationLog(models.Model):
    """One served list: which items, at which positions, for what reasons, from which model."""

    recomm_id = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    visitor_id = models.CharField(max_length=64, blank=True)
    placement = models.CharField(max_length=64)
    context_item = models.ForeignKey(
        "recommender.Item", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # [{"item": 12, "position": 0, "reason": "personalized", "score": 0.91, "because": 7}, ...]
    items = models.JSONField(default=list)
    page = models.PositiveIntegerField(default=0)
    model_version = models.ForeignKey(
        "recommender.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["-created_at"], name="rec_log_time"),
            models.Index(fields=["placement", "-created_at"], name="rec_log_placement_time"),
            models.Index(fields=["user", "-created_at"], name="rec_log_user_time"),
            models.Index(fields=["visitor_id", "-created_at"], name="rec_log_visitor_time"),
        ]

    def __str__(self) -> str:
        return self.recomm_id


class EditorialRuleQuerySet(models.QuerySet):
    """Rules in force now for one placement."""

    def in_force(self, placement: str, at=None) -> EditorialRuleQuerySet:
        at = at or timezone.now()
        return self.filter(
            Q(placement="") | Q(placement=placement),
            Q(starts_at__isnull=True) | Q(starts_at__lte=at),
            Q(ends_at__isnull=True) | Q(ends_at__gt=at),
            is_enabled=True,
        )


class EditorialRule(models.Model):
    """Pin, boost, bury or block an item or every item of a tag, per placement, for a time window."""

    class Action(models.TextChoices):
        PIN = "pin", "Pin to position"
        BOOST = "boost", "Boost"
        BURY = "bury", "Bury"
        BLOCK = "block", "Block"

    action = models.CharField(max_length=8, choices=Action.choices)
    item = models.ForeignKey(
        "recommender.Item", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    tag = models.ForeignKey(
        "recommender.Tag", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    placement = models.CharField(max_length=64, blank=True, help_text="Empty: every placement.")
    position = models.PositiveIntegerField(null=True, blank=True, help_text="For pins: 0 is the first slot.")
    factor = models.FloatField(
        default=1.0, help_text="For boost/bury: added to (boost) or taken from (bury) the score."
    )
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    is_enabled = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = EditorialRuleQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(item__isnull=False) | Q(tag__isnull=False), name="recommender_rule_has_target"
            ),
        ]
        indexes = [models.Index(fields=["is_enabled", "placement"], name="rec_rule_enabled_place")]

    def __str__(self) -> str:
        return f"{self.action} {self.item or self.tag} @ {self.placement or '*'}"


class Profile(models.Model):
    """Per-identity personalization state: opt-out and the tag interest profile."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="recommender_profile",
    )
    visitor_id = models.CharField(max_length=64, blank=True, db_index=True)
    personalization_enabled = models.BooleanField(default=True)
    interests = models.JSONField(default=dict, blank=True, help_text="tag slug -> affinity")
    interests_updated_at = models.DateTimeField(null=True, blank=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["visitor_id"],
                condition=Q(user__isnull=True),
                name="recommender_profile_unique_visitor",
            ),
        ]

    def __str__(self) -> str:
        return f"profile {self.user_id or self.visitor_id}"


class TagRelation(models.Model):
    """Tag-tag relatedness (co-occurrence on items blended with name-embedding similarity)."""

    source = models.ForeignKey("recommender.Tag", on_delete=models.CASCADE, related_name="relations")
    target = models.ForeignKey("recommender.Tag", on_delete=models.CASCADE, related_name="+")
    cooccurrence = models.FloatField(default=0.0)
    similarity = models.FloatField(default=0.0)
    score = models.FloatField(default=0.0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "target"], name="recommender_tagrelation_unique")
        ]
        indexes = [models.Index(fields=["source", "-score"], name="rec_tagrel_source_score")]

    def __str__(self) -> str:
        return f"{self.source_id}→{self.target_id} {self.score:.2f}"
