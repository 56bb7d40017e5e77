"""Content negotiation that always responds in JSON, whatever ``Accept`` asks for."""

from rest_framework.negotiation import DefaultContentNegotiation


class JsonContentNegotiation(DefaultContentNegotiation):
    """Pick JSON even for an ``Accept`` it cannot meet, so errors stay readable (no 406)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = renderers[0]
        return renderer, renderer.media_type
