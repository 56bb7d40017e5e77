"""Render a whole page, or one partial of its template for an htmx request.

htmx sends ``HX-Request: true`` with every request it makes. Those requests
get only the named ``{% partialdef %}`` of the page's template, so the page
and its fragment come from one template. Every response carries
``Vary: HX-Request``, so a cache never serves a fragment for a page load or
the other way round.
"""

from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_vary_headers


def is_htmx(request):
    """Return whether htmx made the request and expects a fragment in return.

    A history restore requests a whole page, although htmx may mark it as its own request.
    """
    if request.headers.get("HX-History-Restore-Request") == "true":
        return False
    return request.headers.get("HX-Request") == "true"


def render_page_or_partial(request, template_name, partial_name, context, **kwargs):
    """Render ``template_name``, or only its partial ``partial_name`` for an htmx request.

    A partial does not pass through ``base.html``, which shows times in the
    tenant's zone, so the zone is set here for both.
    """
    name = f"{template_name}#{partial_name}" if is_htmx(request) else template_name
    with timezone.override(request.tenant.zone):
        response = render(request, name, context, **kwargs)
    patch_vary_headers(response, ["HX-Request"])
    return response
