"""Views of the server-rendered pages; each one resolves the tenant through ``access``."""
