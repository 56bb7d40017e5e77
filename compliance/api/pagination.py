"""Strict limit/offset pagination with the ``{"items", "total"}`` envelope of the hosted API."""

from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from compliance.api.params import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, limit_offset, validate_query


class StrictLimitOffsetPagination(BasePagination):
    """Pages of ``limit`` items (1..100, default 25) from ``offset``; bad values are a 400."""

    def paginate_queryset(self, queryset, request, view=None):
        validate_query(request.query_params, set(request.query_params))
        limit, offset = limit_offset(request.query_params)
        self.total = queryset.count()
        return list(queryset[offset : offset + limit])

    def get_paginated_response(self, data):
        return Response({"items": data, "total": self.total})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["items", "total"],
            "properties": {
                "items": schema,
                "total": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Items in the whole filtered set, whatever the page.",
                },
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": f"Page size, {1}..{MAX_LIMIT}. Other values are a 400.",
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_LIMIT,
                    "default": DEFAULT_LIMIT,
                },
            },
            {
                "name": "offset",
                "in": "query",
                "required": False,
                "description": "Items to skip. Past the end returns no items and the true total.",
                "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
            },
        ]
