"""Canonical JSON: the byte form that digests and fingerprints are computed over."""

import json


def canonical_json(document):
    """Serialise ``document`` with sorted keys, no whitespace and UTF-8, for hashing."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
