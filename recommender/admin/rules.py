"""Editorial rules: pin, boost, bury or block an item or a tag, per placement, for a time window."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from recommender.caching import bump_site_generation
from recommender.conf import recommender_settings
from recommender.models import EditorialRule


class EditorialRuleForm(forms.ModelForm):
    """Placement chosen from the configured placements; one target; a pin needs a position."""

    placement = forms.ChoiceField(required=False)

    class Meta:
        model = EditorialRule
        fields = (
            "action",
            "item",
            "tag",
            "placement",
            "position",
            "factor",
            "starts_at",
            "ends_at",
            "is_enabled",
            "note",
        )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        placements = list(recommender_settings.PLACEMENTS)
        current = self.initial.get("placement") or ""
        if current and current not in placements:
            placements.append(
                current
            )  # keep a rule made for a placement since removed from settings editable
        self.fields["placement"].choices = [("", "Every placement"), *((p, p) for p in placements)]

    def clean(self) -> dict:
        data = super().clean()
        if bool(data.get("item")) == bool(data.get("tag")):
            raise forms.ValidationError("Choose either an item or a tag.")
        if data.get("action") == EditorialRule.Action.PIN and data.get("position") is None:
            self.add_error("position", "A pin needs a position (0 is the first slot).")
        if data.get("action") in (EditorialRule.Action.BOOST, EditorialRule.Action.BURY) and (
            data.get("factor") is None or data["factor"] <= 0
        ):
            self.add_error("factor", "Boost and bury need a positive factor.")
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "The end must come after the start.")
        return data


def rule_in_force(rule: EditorialRule) -> bool:
    """Whether the rule acts now (enabled, started, not ended): shared by this admin and Wagtail's."""
    now = timezone.now()
    return (
        rule.is_enabled
        and (rule.starts_at is None or rule.starts_at <= now)
        and (rule.ends_at is None or rule.ends_at > now)
    )


class InForceFilter(admin.SimpleListFilter):
    """Rules acting now, versus scheduled, expired or disabled ones."""

    title = "in force"
    parameter_name = "in_force"

    def lookups(self, request, model_admin):
        return [("yes", "In force now"), ("no", "Not in force")]

    def queryset(self, request, queryset):
        now = timezone.now()
        in_force = (
            Q(is_enabled=True)
            & (Q(starts_at__isnull=True) | Q(starts_at__lte=now))
            & (Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        )
        if self.value() == "yes":
            return queryset.filter(in_force)
        if self.value() == "no":
            return queryset.exclude(in_force)
        return queryset


@admin.register(EditorialRule)
class EditorialRuleAdmin(admin.ModelAdmin):
    """Rules act on every list served for their placement (or all placements) while in force."""

    form = EditorialRuleForm
    list_display = (
        "action",
        "target",
        "placement_label",
        "position",
        "factor",
        "starts_at",
        "ends_at",
        "is_enabled",
        "in_force",
        "created_by",
    )
    list_filter = ("action", InForceFilter, "is_enabled", "placement")
    search_fields = ("item__title", "tag__name", "note")
    autocomplete_fields = ("item", "tag")
    list_select_related = ("item", "tag", "created_by")
    actions = ("enable", "disable", "end_now")
    readonly_fields = ("created_by", "created_at")

    def save_model(self, request: HttpRequest, obj: EditorialRule, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="target")
    def target(self, obj: EditorialRule) -> str:
        return f"item: {obj.item}" if obj.item_id else f"tag: {obj.tag}"

    @admin.display(description="placement", ordering="placement")
    def placement_label(self, obj: EditorialRule) -> str:
        return obj.placement or "every placement"

    @admin.display(description="in force", boolean=True)
    def in_force(self, obj: EditorialRule) -> bool:
        return rule_in_force(obj)

    @admin.action(description="Enable selected rules", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[EditorialRule]) -> None:
        count = queryset.update(is_enabled=True)
        bump_site_generation()  # QuerySet.update sends no post_save: cached lists would keep the old rules
        self.message_user(request, f"{count} rule(s) enabled.", messages.SUCCESS)

    @admin.action(description="Disable selected rules", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[EditorialRule]) -> None:
        count = queryset.update(is_enabled=False)
        bump_site_generation()
        self.message_user(request, f"{count} rule(s) disabled.", messages.SUCCESS)

    @admin.action(description="End selected rules now", permissions=["change"])
    def end_now(self, request: HttpRequest, queryset: QuerySet[EditorialRule]) -> None:
        count = queryset.filter(Q(ends_at__isnull=True) | Q(ends_at__gt=timezone.now())).update(
            ends_at=timezone.now()
        )
        bump_site_generation()
        self.message_user(request, f"{count} rule(s) ended.", messages.SUCCESS)
