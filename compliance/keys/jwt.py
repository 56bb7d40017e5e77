"""DRF authentication by ``Authorization: Bearer <JWT>`` from an external identity provider.

The tokens are verified with one pinned asymmetric algorithm (``JWT_ALGORITHM``)
and a public key from the settings: ``JWT_PUBLIC_KEY`` (PEM text),
``JWT_PUBLIC_KEY_FILE`` (a PEM file) or ``JWT_JWKS_FILE`` (a local JWKS file,
whose key is chosen by the token's ``kid``). Keys are never fetched over the
network. ``exp``, ``iat``, ``iss``, ``aud`` and ``sub`` are required, and
``iss`` and ``aud`` must equal ``JWT_ISSUER`` and one of ``JWT_AUDIENCE``.

The subject names a Django user through ``JWT_SUBJECT_FIELD`` (the username
by default). The tenant comes from ``X-Tenant-ID`` (UUID or slug) among that
user's memberships, and the role is the membership's role. The header may be
left out when the user belongs to exactly one tenant. When the user belongs
to several tenants and the header is missing, the request is a 400 naming
``X-Tenant-ID``, because the request lacks an input rather than a right.
A tenant that is not among the memberships is a 403.

Without a key source in the settings the class is inert and returns ``None``.
"""

import dataclasses
import json
import logging
from functools import lru_cache
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ValidationError
from rest_framework import authentication, exceptions

from compliance.audit.models import AuditAction, AuditOutcome
from compliance.audit.services import record_event, unauthenticated_event_allowed
from compliance.keys.authentication import www_authenticate
from compliance.tenancy.models import Membership
from compliance.tenancy.scope import membership_scope

logger = logging.getLogger(__name__)

RSA_KEYS = (rsa.RSAPublicKey,)
EDWARDS_KEYS = (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)
# The accepted algorithms and the public key type each one needs. Symmetric
# HS* algorithms are left out because with them anyone who has the public
# key could sign tokens. "none" is left out as well.
KEY_TYPES = {
    "RS256": RSA_KEYS,
    "RS384": RSA_KEYS,
    "RS512": RSA_KEYS,
    "PS256": RSA_KEYS,
    "PS384": RSA_KEYS,
    "PS512": RSA_KEYS,
    "ES256": (ec.EllipticCurvePublicKey,),
    "ES384": (ec.EllipticCurvePublicKey,),
    "ES512": (ec.EllipticCurvePublicKey,),
    "EdDSA": EDWARDS_KEYS,
}
EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]
DEFAULT_LEEWAY_SECONDS = 30
# Tokens longer than this are rejected before any parsing, which bounds the
# work an unauthenticated request can cause.
MAX_TOKEN_LENGTH = 8192


@dataclasses.dataclass(frozen=True)
class JwtSettings:
    algorithm: str
    issuer: str
    audience: tuple
    leeway: float
    subject_field: str
    public_key: str
    public_key_file: str
    jwks_file: str


def _setting(name, default=""):
    return getattr(settings, name, default) or default


def _audiences(value):
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(value)


def jwt_settings():
    """Return the validated JWT settings, or ``None`` when no key source is configured.

    Raise ``ImproperlyConfigured`` for an incomplete or unsafe configuration,
    so a mistake fails loudly instead of accepting or rejecting every token.
    """
    sources = {
        name: _setting(name) for name in ("JWT_PUBLIC_KEY", "JWT_PUBLIC_KEY_FILE", "JWT_JWKS_FILE")
    }
    configured = [name for name, value in sources.items() if value]
    if not configured:
        return None
    if len(configured) > 1:
        raise ImproperlyConfigured(
            f"Set only one of JWT_PUBLIC_KEY, JWT_PUBLIC_KEY_FILE and JWT_JWKS_FILE, "
            f"not {', '.join(configured)}."
        )

    config = JwtSettings(
        algorithm=_setting("JWT_ALGORITHM"),
        issuer=_setting("JWT_ISSUER"),
        audience=_audiences(_setting("JWT_AUDIENCE")),
        leeway=float(_setting("JWT_LEEWAY_SECONDS", DEFAULT_LEEWAY_SECONDS)),
        subject_field=_setting("JWT_SUBJECT_FIELD", "username"),
        public_key=sources["JWT_PUBLIC_KEY"],
        public_key_file=str(sources["JWT_PUBLIC_KEY_FILE"]),
        jwks_file=str(sources["JWT_JWKS_FILE"]),
    )
    _validate(config)
    return config


def _validate(config):
    if config.algorithm not in KEY_TYPES:
        raise ImproperlyConfigured(
            f"JWT_ALGORITHM {config.algorithm!r} is not accepted. "
            f"Use one of {', '.join(KEY_TYPES)}."
        )
    if not config.issuer:
        raise ImproperlyConfigured("JWT_ISSUER is missing. Set it to the token issuer's iss value.")
    if not config.audience:
        raise ImproperlyConfigured("JWT_AUDIENCE is missing. Set it to this API's aud value.")
    if not 0 <= config.leeway <= 300:
        raise ImproperlyConfigured(
            f"JWT_LEEWAY_SECONDS must be between 0 and 300, got {config.leeway}."
        )

    try:
        field = get_user_model()._meta.get_field(config.subject_field)
    except FieldDoesNotExist:
        raise ImproperlyConfigured(
            f"JWT_SUBJECT_FIELD {config.subject_field!r} is not a field of the user model."
        ) from None
    if not field.unique:
        raise ImproperlyConfigured(
            f"JWT_SUBJECT_FIELD {config.subject_field!r} must be a unique field of the user model."
        )


def check_key_type(key, algorithm, source):
    """Raise ``ImproperlyConfigured`` unless ``key`` is a public key usable with ``algorithm``."""
    if not isinstance(key, KEY_TYPES[algorithm]):
        raise ImproperlyConfigured(
            f"{source} contains a {type(key).__name__}, not a key for {algorithm}."
        )
    expected_curve = EC_CURVES.get(algorithm)
    if expected_curve and key.curve.name != expected_curve:
        raise ImproperlyConfigured(
            f"{source} uses the curve {key.curve.name}, but {algorithm} needs {expected_curve}."
        )


@lru_cache(maxsize=8)
def _load_pem(pem_bytes, algorithm, source):
    try:
        key = serialization.load_pem_public_key(pem_bytes)
    except ValueError:
        raise ImproperlyConfigured(f"{source} is not a PEM-encoded public key.") from None
    check_key_type(key, algorithm, source)
    return key


@lru_cache(maxsize=8)
def _load_jwks(path, modified_ns, size, algorithm):
    """Return ``{kid: public key}`` from a JWKS file.

    The file's mtime and size are part of the cache key, so an edited file is read again.
    """
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        entries = document["keys"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ImproperlyConfigured(
            f"JWT_JWKS_FILE {path} is not a readable JWKS file with a 'keys' list: {exc}"
        ) from None

    keys = {}
    for entry in entries:
        if entry.get("use", "sig") != "sig" or entry.get("alg", algorithm) != algorithm:
            continue
        kid = entry.get("kid")
        if not kid:
            raise ImproperlyConfigured(f"JWT_JWKS_FILE {path} has a key without a 'kid'.")
        try:
            key = jwt.PyJWK(entry, algorithm=algorithm).key
        except jwt.PyJWKError as exc:
            raise ImproperlyConfigured(
                f"JWT_JWKS_FILE {path}: key {kid!r} is invalid: {exc}"
            ) from None
        check_key_type(key, algorithm, f"JWT_JWKS_FILE key {kid!r}")
        keys[kid] = key
    if not keys:
        raise ImproperlyConfigured(f"JWT_JWKS_FILE {path} has no signing key for {algorithm}.")
    return keys


def _file_state(path, setting_name):
    try:
        stat = Path(path).stat()
    except OSError as exc:
        raise ImproperlyConfigured(f"{setting_name} {path} cannot be read: {exc}") from None
    return stat.st_mtime_ns, stat.st_size


def verification_keys(config):
    """Return ``{kid: key}`` for a JWKS file, or ``{None: key}`` for a single PEM key."""
    if config.jwks_file:
        modified_ns, size = _file_state(config.jwks_file, "JWT_JWKS_FILE")
        return _load_jwks(config.jwks_file, modified_ns, size, config.algorithm)

    if config.public_key_file:
        _file_state(config.public_key_file, "JWT_PUBLIC_KEY_FILE")
        pem = Path(config.public_key_file).read_bytes()
        return {None: _load_pem(pem, config.algorithm, "JWT_PUBLIC_KEY_FILE")}
    return {None: _load_pem(config.public_key.encode(), config.algorithm, "JWT_PUBLIC_KEY")}


class InvalidToken(exceptions.AuthenticationFailed):
    """A bearer token that failed verification. Its message never contains the token."""


def describe_token_error(exc):
    """Return a client-facing message for a PyJWT error, without any part of the token."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "The bearer token has expired."
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"The bearer token has no {exc.claim!r} claim."
    if isinstance(exc, jwt.InvalidAudienceError):
        return "The bearer token's audience (aud) is not this API."
    if isinstance(exc, jwt.InvalidIssuerError):
        return "The bearer token's issuer (iss) is not trusted."
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "The bearer token is not valid yet."
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "The bearer token is signed with an algorithm this API does not accept."
    return "The bearer token is invalid."


def decode_token(token, config):
    """Verify ``token`` and return its claims, or raise ``InvalidToken``."""
    keys = verification_keys(config)
    try:
        if None in keys:
            key = keys[None]
        else:
            kid = jwt.get_unverified_header(token).get("kid")
            if kid not in keys:
                raise InvalidToken("The bearer token's key id (kid) is not known.")
            key = keys[kid]

        return jwt.decode(
            token,
            key=key,
            algorithms=[config.algorithm],
            audience=list(config.audience),
            issuer=config.issuer,
            leeway=config.leeway,
            options={"require": REQUIRED_CLAIMS, "verify_signature": True},
        )
    except jwt.InvalidTokenError as exc:
        raise InvalidToken(describe_token_error(exc)) from None


class JwtPrincipal:
    """The caller of a bearer-token request, with the attributes of ``ApiKeyPrincipal``."""

    is_authenticated = True
    is_anonymous = False
    api_key = None

    def __init__(self, user, membership, subject):
        self.user = user
        self.tenant = membership.tenant
        self.role = membership.role
        self.scope = membership_scope(membership)
        self.subject = subject

    def __str__(self):
        return f"bearer token of {self.user.get_username()}"


def find_subject(config, subject):
    """Return the active user named by ``subject``, or ``None``."""
    user_model = get_user_model()
    try:
        return (
            user_model._default_manager.filter(**{config.subject_field: subject}, is_active=True)
            .only("pk", user_model.USERNAME_FIELD)
            .first()
        )
    except (ValueError, ValidationError):
        # A subject that cannot be a value of the field, such as text for an integer id.
        return None


def select_membership(user, requested):
    """Return the membership that ``X-Tenant-ID`` names, or the only one when it is absent."""
    memberships = list(Membership.objects.filter(user=user).select_related("tenant"))
    if requested is None:
        if len(memberships) == 1:
            return memberships[0]
        if not memberships:
            raise exceptions.PermissionDenied("The token's user is not a member of any tenant.")
        raise exceptions.ValidationError(
            {
                "X-Tenant-ID": [
                    "Required because the token's user is a member of several tenants. "
                    "Send the tenant's UUID or slug."
                ]
            }
        )

    # Matched exactly as HasTenantRole matches it, which checks the header again.
    tenant_reference = requested.strip()
    for membership in memberships:
        if tenant_reference in {str(membership.tenant_id), membership.tenant.slug}:
            return membership
    raise exceptions.PermissionDenied("The token's user is not a member of the X-Tenant-ID tenant.")


class JwtAuthentication(authentication.BaseAuthentication):
    """Authenticate ``Authorization: Bearer <JWT>`` by the rules in the module docstring."""

    keyword = "bearer"

    def authenticate(self, request):
        token = self.bearer_token(request)
        if token is None:
            return None
        config = jwt_settings()
        if config is None:
            return None

        try:
            claims = decode_token(token, config)
            user = find_subject(config, claims["sub"])
            if user is None:
                raise InvalidToken("The bearer token's subject is not an active user.")
        except InvalidToken as exc:
            self.fail(request, exc)

        membership = select_membership(user, request.headers.get("X-Tenant-ID"))
        return JwtPrincipal(user, membership, claims["sub"]), None

    def authenticate_header(self, request):
        return www_authenticate(request)

    def bearer_token(self, request):
        """Return the token of a Bearer ``Authorization`` header, or ``None`` for other schemes."""
        header = request.headers.get("Authorization")
        if not header:
            return None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != self.keyword:
            return None

        token = token.strip()
        if not token or " " in token or len(token) > MAX_TOKEN_LENGTH:
            self.fail(request, InvalidToken("The Authorization header must be 'Bearer <token>'."))
        return token

    def fail(self, request, exc):
        """Record and log the failure, mark the challenge as ``invalid_token`` and raise ``exc``."""
        logger.info("bearer token authentication failed: %s", exc.detail)
        request.bearer_error = "invalid_token"
        if unauthenticated_event_allowed():
            record_event(
                AuditAction.AUTH_FAILED,
                outcome=AuditOutcome.FAILURE,
                details={"method": "jwt", "reason": str(exc.detail)},
            )
        raise exc
