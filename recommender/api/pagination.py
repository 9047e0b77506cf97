"""Pagination of the API's plain lists (the requester's history): DRF's page numbers, checked strictly.

Served recommendation lists page with their own ``page_token`` instead: a next page
must leave out what the reader was already shown, which a page number cannot say.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request


class HistoryPagination(PageNumberPagination):
    """``?page=N&page_size=M`` (20 by default, at most 100) -> ``count``, ``next``, ``previous``, ``results``.

    A page past the end is DRF's 404 "Invalid page.".

    DRF quietly clamps a page size above the maximum and ignores a malformed one; here
    either is a 400 naming the parameter, so a client learns of its mistake.
    """

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        return _bounded_int(self.page_size_query_param, raw, 1, self.max_page_size)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        """DRF's parameters with the bounds this class enforces, so clients (and fuzzers) know them."""
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.page_query_param: {"minimum": 1},
            self.page_size_query_param: {"minimum": 1, "maximum": self.max_page_size},
        }
        for parameter in parameters:
            parameter["schema"] = {**parameter["schema"], **bounds.get(parameter["name"], {})}
        return parameters

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any] | None:
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and raw != "last":
            _bounded_int(self.page_query_param, raw, 1, None)  # 0, -1 or "x": a 400, not DRF's 404
        return super().paginate_queryset(queryset, request, view)


def _bounded_int(name: str, raw: str, low: int, high: int | None) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: [f"A whole number is required, got {raw!r}."]}) from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValidationError({name: [f"Must be {bounds}, got {value}."]})
    return value
