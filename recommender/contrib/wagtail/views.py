"""The page's recommendations view in Wagtail's admin: its performance and the pin/block actions."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_http_methods
from wagtail.models import Page

from recommender.contrib.wagtail import performance

RULE_PERMISSION = "recommender.add_editorialrule"


@require_http_methods(["GET", "POST"])
def page_recommendations(request: HttpRequest, page_id: int) -> HttpResponse:
    """GET: the page's impressions, clicks, CTR and rules; POST ``action`` = pin | block | end.

    Seen by whoever may edit the page; changed only by those who may also add editorial rules.
    """
    page = get_object_or_404(Page, pk=page_id).specific
    if not page.permissions_for_user(request.user).can_edit():
        raise PermissionDenied
    stats = performance.page_performance(page)
    can_change = request.user.has_perm(RULE_PERMISSION)
    if request.method == "POST":
        if not can_change or stats.item is None:
            raise PermissionDenied
        action = request.POST.get("action")
        if action == "pin":
            performance.pin_page(stats.item, by=request.user)
            messages.success(request, f"“{page.title}” is pinned to the top of every list.")
        elif action == "block":
            performance.block_page(stats.item, by=request.user)
            messages.success(request, f"“{page.title}” is no longer recommended.")
        elif action == "end":
            count = performance.end_rules(stats.item)
            messages.success(request, f"Ended {count} rule(s) for “{page.title}”.")
        else:
            messages.error(request, "Unknown action.")
        return redirect("recommender_wagtail:page", page_id=page.pk)
    context = {"page": page, "stats": stats, "can_change": can_change}
    return TemplateResponse(request, "recommender_wagtail/page_recommendations.html", context)
