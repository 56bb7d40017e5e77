"""A filter backend that rejects unknown, repeated, empty and invalid query parameters."""

from django_filters.rest_framework import DjangoFilterBackend

from compliance.api.params import PAGE_PARAMETERS, validate_query


class StrictFilterBackend(DjangoFilterBackend):
    """Apply the view's FilterSet after checking every query parameter, pages included.

    The page parameters are checked here too, so that one 400 names every
    offending parameter before the paginator runs.
    """

    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        accepted = set(filterset.base_filters) | set(PAGE_PARAMETERS)
        validate_query(request.query_params, accepted, filterset)
        return filterset.qs
