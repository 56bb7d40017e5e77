"""Record audit events. Pages, API views, authentication and domain services call these.

The request id and client address come from the request being served (see
``compliance.audit.middleware``), so a service function records them without
being handed the request. Outside a request, for example in the background
worker, both are empty unless the caller passes them.
"""

import logging
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache

from compliance.audit.middleware import current_request_context
from compliance.audit.models import AuditAction, AuditEvent, AuditOutcome
from compliance.tenancy.models import Membership

logger = logging.getLogger(__name__)

# A ``details`` entry whose key contains one of these words is dropped before
# the event is written, at any depth, because its value may be a credential.
SECRET_KEY_WORDS = ("password", "secret", "token", "authorization", "plaintext", "cookie")
DEFAULT_UNAUTHENTICATED_EVENTS_PER_MINUTE = 60
MAX_ACTOR_NAME_LENGTH = 200


def describe_actor(user=None, api_key=None):
    """Return the actor's name as shown in the trail: the key's name and prefix, or the username."""
    if api_key is not None:
        name = f"API key {api_key.name} ({api_key.display_prefix})"
    elif user is not None:
        name = user.get_username()
    else:
        name = ""
    return name[:MAX_ACTOR_NAME_LENGTH]


def actor_of(request):
    """Return ``(user, api_key)`` of the authenticated caller, both ``None`` when anonymous.

    A request made with an API key is attributed to the key alone, not to the
    user who created the key. A request made with a bearer token is attributed
    to the token's user.
    """
    principal = getattr(request, "user", None)
    if principal is None or not principal.is_authenticated:
        return None, None
    if hasattr(principal, "api_key"):
        if principal.api_key is not None:
            return None, principal.api_key
        return principal.user, None
    return principal, None


def tenants_of(user):
    """Return the tenants ``user`` is a member of, or an empty list for ``None``."""
    if user is None:
        return []
    memberships = Membership.objects.filter(user=user).select_related("tenant")
    return [membership.tenant for membership in memberships.order_by("tenant__name", "tenant_id")]


def without_secrets(value):
    """Return ``value`` with every dict entry whose key names a credential removed."""
    if isinstance(value, dict):
        cleaned = {}
        for key, item in value.items():
            if any(word in str(key).lower() for word in SECRET_KEY_WORDS):
                logger.warning("dropped audit detail %r because it may contain a secret", key)
                continue
            cleaned[key] = without_secrets(item)
        return cleaned
    if isinstance(value, list | tuple):
        return [without_secrets(item) for item in value]
    return value


def record_event(
    action,
    *,
    tenant=None,
    user=None,
    api_key=None,
    actor_name=None,
    target=None,
    target_type="",
    target_id="",
    outcome=AuditOutcome.SUCCESS,
    details=None,
    request_id=None,
    client_address=None,
):
    """Write one audit event and return it.

    ``target`` is a model instance, or pass ``target_type`` and ``target_id``.
    ``actor_name`` defaults to the name of ``api_key``, else of ``user``.
    Database errors propagate, so an action whose audit record failed is not
    reported as done.
    """
    context = current_request_context()
    if request_id is None:
        request_id = context.request_id if context else ""
    if client_address is None and context is not None:
        client_address = context.client_address
    if target is not None:
        target_type = target._meta.label_lower
        target_id = str(target.pk)
    if actor_name is None:
        actor_name = describe_actor(user, api_key)

    return AuditEvent.objects.create(
        tenant=tenant,
        actor_user=user,
        actor_key=api_key,
        actor_name=actor_name[:MAX_ACTOR_NAME_LENGTH],
        action=AuditAction(action),
        target_type=target_type,
        target_id=target_id,
        request_id=request_id,
        client_address=client_address,
        outcome=AuditOutcome(outcome),
        details=without_secrets(details or {}),
    )


def record_request_event(request, action, **fields):
    """Write an audit event for the caller of ``request``, a page or an API request.

    The actor comes from ``actor_of(request)`` and the tenant, unless given,
    from ``request.tenant``, which the page and API access checks set.
    """
    user, api_key = actor_of(request)
    fields.setdefault("tenant", getattr(request, "tenant", None))
    return record_event(action, user=user, api_key=api_key, **fields)


def origin_request_id(action, target):
    """Return the current request's id, else the request id of the first ``action`` on ``target``.

    Work finished outside a request, such as a report generated by the
    background worker, is recorded under the request that started it.
    """
    context = current_request_context()
    if context is not None:
        return context.request_id

    first = (
        AuditEvent.objects.filter(
            action=action, target_type=target._meta.label_lower, target_id=str(target.pk)
        )
        .order_by("occurred_at")
        .values_list("request_id", flat=True)
        .first()
    )
    return first or ""


def unauthenticated_event_allowed():
    """Count one unauthenticated event for the client address and return whether to record it.

    Failed logins and failed API authentications are written before anyone
    is authenticated, so a client could fill the table with them. Each client
    address gets ``AUDIT_UNAUTHENTICATED_EVENTS_PER_MINUTE`` such events per
    clock minute, and the rest are counted in one warning log line.
    """
    limit = getattr(
        settings,
        "AUDIT_UNAUTHENTICATED_EVENTS_PER_MINUTE",
        DEFAULT_UNAUTHENTICATED_EVENTS_PER_MINUTE,
    )
    context = current_request_context()
    address = (context.client_address if context else None) or "unknown"
    minute = int(time.time() // 60)
    key = f"audit:unauthenticated:{address}:{minute}"

    cache.add(key, 0, timeout=120)
    try:
        count = cache.incr(key)
    except ValueError:
        # The entry expired between add() and incr().
        cache.set(key, 1, timeout=120)
        count = 1

    if count == limit + 1:
        logger.warning(
            "client %s exceeded %s failed authentication events this minute, "
            "so later ones are not recorded until the next minute",
            address,
            limit,
        )
    return count <= limit


def find_user(username):
    """Return the user with this username, or ``None`` when it is unknown or not a string."""
    if not isinstance(username, str) or not username:
        return None
    user_model = get_user_model()
    return user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first()


def record_login_failure(username, reason):
    """Record a failed or refused login in the tenants of the account it named.

    The attempted username is kept only when it names an existing account,
    because people sometimes type a password into the username field.
    """
    if not unauthenticated_event_allowed():
        return

    user = find_user(username)
    details = {"reason": reason, "username_known": user is not None}
    actor_name = user.get_username() if user is not None else ""
    for tenant in tenants_of(user) or [None]:
        record_event(
            AuditAction.LOGIN_FAILED,
            tenant=tenant,
            actor_name=actor_name,
            target=user,
            outcome=AuditOutcome.FAILURE,
            details=details,
        )
