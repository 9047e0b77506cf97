"""The tuning page: one record of run-time values, its change history, and a live side-by-side preview."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse

from recommender.admin import tuning_forms
from recommender.admin.tuning_forms import TuningForm
from recommender.conf import recommender_settings
from recommender.models import HistoryAccess, TuningChange, TuningSettings
from recommender.settings_schema import SETTINGS
from recommender.tuning import get_tuning

HISTORY_SHOWN = 20


class PreviewSubjectForm(forms.Form):
    """Whose list to preview: a user (id or username) or a pasted sequence of item ids."""

    user = forms.CharField(required=False, label="User (id or username)")
    items = forms.CharField(required=False, label="Or item ids, oldest first")
    placement = forms.ChoiceField(required=False)
    limit = forms.IntegerField(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["placement"].choices = [(p, p) for p in recommender_settings.PLACEMENTS]
        # Bounded as the API bounds it: MAX_LIMIT is tunable at run time.
        self.fields["limit"] = forms.IntegerField(
            min_value=SETTINGS["DEFAULT_LIMIT"].min, max_value=get_tuning().max_limit, required=False
        )

    def clean_user(self) -> int | None:
        value = self.cleaned_data["user"].strip()
        if not value:
            return None
        User = get_user_model()
        lookup = {"pk": int(value)} if value.isdigit() else {User.USERNAME_FIELD: value}
        user_id = User.objects.filter(**lookup).values_list("pk", flat=True).first()
        if user_id is None:
            raise ValidationError("No such user.")
        return user_id

    def clean_items(self) -> list[int]:
        raw = self.cleaned_data["items"].replace(",", " ").split()
        if not all(part.isdigit() for part in raw):
            raise ValidationError("Item ids are whole numbers separated by spaces or commas.")
        return [int(part) for part in raw]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not self.errors and data.get("user") is None and not data.get("items"):
            raise ValidationError("Pick a user or paste item ids.")
        return data


def preview_errors(errors: dict[str, list[str]], *forms_: forms.Form) -> dict[str, Any]:
    """The preview's 400 body: messages by field name (to mark the fields) and as sentences an editor reads.

    The sentences name fields by their labels ("Freshness weight: ..."), never by the
    setting names the fields are keyed by.
    """
    labels = {name: str(form[name].label) for form in forms_ for name in form.fields}
    labels.update({s.name: s.label for s in SETTINGS.values() if s.name not in labels and s.label})
    sentences = [
        f"{labels[key]}: {message}" if key in labels else message
        for key, messages in errors.items()
        for message in messages
    ]
    return {"errors": errors, "messages": sentences}


def preview_response(request: HttpRequest) -> JsonResponse:
    """The preview's JSON for a POST the caller has checked: shared by this admin and Wagtail's.

    Records who looked at a reader's history (``HistoryAccess``) before showing it.
    """
    form, subject = TuningForm(request.POST), PreviewSubjectForm(request.POST)
    if not (form.is_valid() and subject.is_valid()):
        errors = {**form.errors.get_json_data(), **subject.errors.get_json_data()}
        by_field = {k: [e["message"] for e in v] for k, v in errors.items()}
        return JsonResponse(preview_errors(by_field, form, subject), status=400)
    data = subject.cleaned_data
    if data["user"] is not None:  # a reader's history is about to be shown: record who looked
        reader = get_user_model().objects.filter(pk=data["user"]).first()
        HistoryAccess.objects.create(
            viewed_by=request.user,
            subject=reader,
            subject_label=reader.get_username() if reader else str(data["user"]),
            where="tuning preview",
        )
    try:
        result = tuning_forms.preview(
            form.values,
            user_id=data["user"],
            item_ids=data["items"],
            placement=data["placement"] or "default",
            limit=data["limit"] or 10,
            include_current=request.POST.get("include_current", "1") != "0",
        )
    except ValidationError as exc:
        return JsonResponse(preview_errors(exc.message_dict, form, subject), status=400)
    return JsonResponse(result)


@admin.register(TuningSettings)
class TuningSettingsAdmin(admin.ModelAdmin):
    """A single page instead of a list: the tuning form, the history and the preview."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: TuningSettings | None = None) -> bool:
        return False

    def get_urls(self):
        return [
            path(
                "preview/",
                self.admin_site.admin_view(self.preview_view),
                name="recommender_tuningsettings_preview",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        return HttpResponseRedirect(reverse("admin:recommender_tuningsettings_changelist"))

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        """GET shows the effective values; POST validates and saves them with an audit row."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        can_change = self.has_change_permission(request)
        if request.method == "POST":
            if not can_change:
                raise PermissionDenied
            form = TuningForm(request.POST)
            if form.is_valid():
                change = tuning_forms.save_tuning(form.values, by=request.user)
                if change:
                    self.message_user(
                        request, f"Tuning saved: {', '.join(change.after)} changed.", messages.SUCCESS
                    )
                else:
                    self.message_user(request, "Nothing changed.", messages.INFO)
                return HttpResponseRedirect(request.path)
        else:
            form = TuningForm(initial=TuningForm.initial_from(tuning_forms.effective_values()))
        if not can_change:
            for field in form.fields.values():
                field.disabled = True
        history = TuningChange.objects.select_related("changed_by")[:HISTORY_SHOWN]
        context = {
            **self.admin_site.each_context(request),
            "title": "Recommender tuning",
            "opts": self.model._meta,
            "form": form,
            "can_change": can_change,
            "subject_form": PreviewSubjectForm(initial={"limit": 10, "placement": "default"}),
            "history": [(c, sorted(c.after)) for c in history],
            "preview_url": reverse("admin:recommender_tuningsettings_preview"),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/recommender/tuning.html", context)

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        """JSON: the subject's list under the saved tuning and under the posted, unsaved one."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        return preview_response(request)


@admin.register(HistoryAccess)
class HistoryAccessAdmin(admin.ModelAdmin):
    """Who looked at whose history, when: read-only, nobody edits or deletes the trail here."""

    list_display = ("viewed_at", "viewed_by", "subject_label", "where")
    list_select_related = ("viewed_by",)
    date_hierarchy = "viewed_at"
    search_fields = ("subject_label", "viewed_by__username")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: HistoryAccess | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: HistoryAccess | None = None) -> bool:
        return False


@admin.register(TuningChange)
class TuningChangeAdmin(admin.ModelAdmin):
    """The audit trail of tuning: read-only."""

    list_display = ("changed_at", "changed_by", "keys")
    list_select_related = ("changed_by",)
    date_hierarchy = "changed_at"
    readonly_fields = ("changed_at", "changed_by", "before", "after")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: TuningChange | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: TuningChange | None = None) -> bool:
        return False

    @admin.display(description="changed")
    def keys(self, obj: TuningChange) -> str:
        return ", ".join(sorted(obj.after))
