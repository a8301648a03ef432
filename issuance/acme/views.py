"""ACME endpoints (RFC 8555): each view authenticates through services.authenticate,
calls one service verb and renders with messages. Every response carries a fresh
Replay-Nonce and a Link to the directory; errors are problem documents."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from django.conf import settings
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from applications.models import Application
from certportal import faults
from certportal.clientip import client_ip
from certportal.refusals import Refused
from issuance.acme import messages, nonces, services
from issuance.acme.choices import OrderStatus
from issuance.acme.messages import AcmeProblem, Urls
from issuance.acme.models import Account, Authorization, Challenge, Order, could_be_token
from issuance.models import Certificate
from issuance.renewal.window import renewal_window
from issuance.services import attached_profile
from profiles.models import CertificateProfile


@dataclass
class Reply:
    """What an endpoint answers, before the common ACME headers are added."""

    body: Any = None
    status: int = 200
    content_type: str = messages.JSON
    location: str | None = None
    links: list[tuple[str, str]] = field(default_factory=list)
    retry_after: int | None = None


def acme_endpoint(*methods: str) -> Callable[[Callable[..., Reply]], Callable[..., HttpResponse]]:
    """Turn a Reply, an AcmeProblem or a service refusal into the HTTP response, with the
    common headers. Another method than ``methods`` is a 405 problem document (RFC 8555
    6.3), as every error here is one."""

    def decorate(view: Callable[..., Reply]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise AcmeProblem(
                        "malformed", f"Use {' or '.join(methods)} on this resource.", 405
                    )
                reply = view(request, **kwargs)
            except AcmeProblem as problem:
                reply = _problem_reply(request, problem)
            except Refused as refused:  # a service verb's refusal, in ACME's terms
                reply = _problem_reply(request, messages.problem_for(refused))
            except faults.OUTAGE_ERRORS as exc:
                faults.note(request, exc, faults.outage(exc) or "")
                outage = AcmeProblem("serverInternal", faults.MESSAGE, status=503)
                reply = Reply(outage.as_json(), 503, messages.PROBLEM_JSON)
                return faults.finish(_render(request, reply, kwargs))
            response = _render(request, reply, kwargs)
            if response.status_code == 405:
                response["Allow"] = ", ".join(methods)
            return response

        return wrapper

    return decorate


def outage_problem() -> HttpResponse:
    """The answer to a database or Redis outage raised outside an ACME view (middleware):
    serverInternal with a fresh nonce, which is an HMAC and needs neither service."""
    problem = AcmeProblem("serverInternal", faults.MESSAGE, status=503)
    response = HttpResponse(
        json.dumps(problem.as_json()), status=503, content_type=messages.PROBLEM_JSON
    )
    response["Replay-Nonce"] = nonces.issue()
    return response


def _problem_reply(request: HttpRequest, problem: AcmeProblem) -> Reply:
    links = []
    if problem.kind == "userActionRequired":
        # RFC 8555 7.3.3: the client is sent to the terms it must agree to.
        links.append((_terms_url(request), "terms-of-service"))
    return Reply(
        problem.as_json(),
        problem.status,
        messages.PROBLEM_JSON,
        location=problem.location,
        links=links,
        retry_after=problem.retry_after,
    )


def _terms_url(request: HttpRequest) -> str:
    return settings.CERTPORTAL_ACME_TERMS_URL or request.build_absolute_uri("/acme/terms")


def _render(request: HttpRequest, reply: Reply, kwargs: dict[str, Any]) -> HttpResponse:
    if reply.body is None or isinstance(reply.body, str):
        content = reply.body or ""
    else:
        content = json.dumps(reply.body)
    response = HttpResponse(content, status=reply.status, content_type=reply.content_type)
    response["Replay-Nonce"] = nonces.issue()
    response["Cache-Control"] = "no-store"
    links = list(reply.links)
    if "profile" in kwargs:
        links.append((_base(request, kwargs["app"]) + f"/{kwargs['profile']}/directory", "index"))
    response["Link"] = ", ".join(f'<{url}>;rel="{rel}"' for url, rel in links)
    if reply.location:
        response["Location"] = reply.location
    if reply.retry_after is not None:
        response["Retry-After"] = str(reply.retry_after)
    return response


def _base(request: HttpRequest, app: str) -> str:
    return request.build_absolute_uri(f"/acme/{app}")


def _urls(request: HttpRequest, application: Application, profile_slug: str) -> Urls:
    base = _base(request, application.name)
    return Urls(directory_base=f"{base}/{profile_slug}", object_base=base)


def _order_urls(request: HttpRequest, application: Application, profile_id: int) -> Urls:
    """The URLs for an order's objects; its directory is its profile's."""
    return _urls(request, application, services.profile_slug(profile_id))


def _index_link(urls: Urls) -> tuple[str, str]:
    return (urls.index(), "index")


def _application(app: str) -> Application:
    application = Application.objects.filter(name=app).first()
    if application is None:
        raise AcmeProblem("malformed", "No such ACME directory.", 404)
    return application


def _directory(app: str, profile: str) -> tuple[Application, CertificateProfile]:
    application = _application(app)
    return application, _profile(application, profile)


def _profile(application: Application, slug: str) -> CertificateProfile:
    found = attached_profile(application, slug)
    if found is None or not found.profile.is_active:
        raise AcmeProblem("malformed", "No such ACME directory.", 404)
    return found.profile


def _auth(request: HttpRequest, app: str, want_jwk: bool | None = False) -> services.Authenticated:
    if request.content_type != messages.JOSE_JSON:
        raise AcmeProblem("malformed", f"Use Content-Type {messages.JOSE_JSON}.", 415)
    return services.authenticate(
        app,
        body=request.body,
        url=request.build_absolute_uri(request.path),
        want_jwk=want_jwk,
        source_ip=client_ip(request),
    )


def _account_auth(request: HttpRequest, app: str) -> tuple[Account, services.Authenticated]:
    """A request signed by an account (kid): the account, with its Application, comes
    from the one lookup that checks it belongs to this URL's Application."""
    auth = _auth(request, app)
    assert auth.account is not None
    return auth.account, auth


# --- Directory, nonces, terms -----------------------------------------------------------


@acme_endpoint("GET")
def directory(request: HttpRequest, app: str, profile: str) -> Reply:
    application, found = _directory(app, profile)
    urls = _urls(request, application, found.slug)
    return Reply(
        messages.directory(
            urls, _terms_url(request), settings.CERTPORTAL_BASE_URL, (found.slug, found.description)
        )
    )


@acme_endpoint("GET", "HEAD")
def new_nonce(request: HttpRequest, app: str, profile: str) -> Reply:
    _directory(app, profile)
    return Reply(status=200 if request.method == "HEAD" else 204)


@require_safe
def terms(request: HttpRequest) -> HttpResponse:
    return HttpResponse(settings.CERTPORTAL_ACME_TERMS_TEXT, content_type="text/plain")


# --- Accounts ---------------------------------------------------------------------------


@acme_endpoint("POST")
def new_account(request: HttpRequest, app: str, profile: str) -> Reply:
    application, found = _directory(app, profile)
    auth = _auth(request, app, want_jwk=True)
    urls = _urls(request, application, found.slug)
    account, created = services.new_account(
        application, found, auth, url=request.build_absolute_uri(request.path)
    )
    return Reply(
        messages.account_json(account, urls),
        status=201 if created else 200,
        location=urls.account(account.id),
    )


def _own_account(
    request: HttpRequest, app: str, account_id: str
) -> tuple[Account, services.Authenticated, Urls]:
    account, auth = _account_auth(request, app)
    if account.id != account_id:
        raise AcmeProblem("unauthorized", "This is not your account.", 403)
    return account, auth, _urls(request, account.application, account.profile.slug)


@acme_endpoint("POST")
def account(request: HttpRequest, app: str, account_id: str) -> Reply:
    found, auth, urls = _own_account(request, app, account_id)
    found = services.update_account(found, auth)
    return Reply(messages.account_json(found, urls), links=[_index_link(urls)])


@acme_endpoint("POST")
def account_orders(request: HttpRequest, app: str, account_id: str) -> Reply:
    found, _, urls = _own_account(request, app, account_id)
    ids = Order.objects.filter(account=found).values_list("pk", flat=True)
    return Reply({"orders": [urls.obj("order", i) for i in ids]}, links=[_index_link(urls)])


@acme_endpoint("POST")
def key_change(request: HttpRequest, app: str, profile: str) -> Reply:
    application, found = _directory(app, profile)
    auth = _auth(request, app)
    assert auth.account is not None
    urls = _urls(request, application, found.slug)
    changed = services.change_key(
        auth.account,
        auth,
        url=request.build_absolute_uri(request.path),
        account_url=urls.account(auth.account.id),
    )
    return Reply(messages.account_json(changed, urls), location=urls.account(changed.id))


# --- Orders, authorizations, challenges -------------------------------------------------


def _order_reply(
    order: Order,
    urls: Urls,
    status: int = 200,
    location: bool = False,
    authz_ids: list[str] | None = None,
) -> Reply:
    if authz_ids is None:
        authz_ids = [pk for (pk,) in _order_authz_ids(order_id=order.pk)]
    retry = settings.CERTPORTAL_ACME_RETRY_AFTER_SECONDS
    return Reply(
        messages.order_json(order, authz_ids, urls),
        status=status,
        location=urls.obj("order", order.id) if location or status == 201 else None,
        retry_after=retry if order.status == OrderStatus.PROCESSING else None,
    )


def _order_authz_ids(order_id: str) -> list[tuple[str]]:
    return list(Authorization.objects.filter(order_id=order_id).values_list("pk"))


def _orders_of_account(order_id: str, account_id: str) -> list[Order]:
    # A primary key needs no ORDER BY.
    return list(Order.objects.filter(pk=order_id, account_id=account_id).order_by())


# The challenges, each with its authorization (every authorization has at least one) and
# the profile id the URLs need, for one authorization or one challenge of the account.
_CHALLENGES = (
    Challenge.objects.select_related("authorization")
    .annotate(order_profile_id=F("authorization__order__profile_id"))
    .order_by("type")
)


def _authz_challenges(authz_id: str, account_id: str) -> list[Challenge]:
    return list(
        _CHALLENGES.filter(authorization_id=authz_id, authorization__order__account_id=account_id)
    )


def _account_challenge(challenge_id: str, account_id: str) -> list[Challenge]:
    return list(_CHALLENGES.filter(pk=challenge_id, authorization__order__account_id=account_id))


@acme_endpoint("POST")
def new_order(request: HttpRequest, app: str, profile: str) -> Reply:
    account, auth = _account_auth(request, app)
    application = account.application
    found = _profile(application, profile)
    order, authorizations = services.new_order(account, found, auth)
    urls = _urls(request, application, found.slug)
    return _order_reply(order, urls, status=201, authz_ids=[a.pk for a in authorizations])


def _owned(
    query: Callable[..., list[Any]], what: str, account: Account, **object_id: str
) -> list[Any]:
    """The rows of one of the account's objects, looked up by its id (the one keyword);
    not found when there are none, or when the id could never be ours (then the database
    is not asked)."""
    ((_, value),) = object_id.items()
    found = query(account_id=account.pk, **object_id) if could_be_token(value) else []
    if not found:
        raise AcmeProblem("malformed", f"No such {what} for this account.", 404)
    return found


def _account_order(
    request: HttpRequest, app: str, order_id: str
) -> tuple[Order, services.Authenticated, Urls]:
    account, auth = _account_auth(request, app)
    order = _owned(_orders_of_account, "order", account, order_id=order_id)[0]
    order.account = account
    return order, auth, _order_urls(request, account.application, order.profile_id)


@acme_endpoint("POST")
def order(request: HttpRequest, app: str, order_id: str) -> Reply:
    found, _, urls = _account_order(request, app, order_id)
    services.refresh_order(found)
    reply = _order_reply(found, urls)
    reply.links.append(_index_link(urls))
    return reply


@acme_endpoint("POST")
def finalize(request: HttpRequest, app: str, order_id: str) -> Reply:
    found, auth, urls = _account_order(request, app, order_id)
    found = services.finalize(found, auth)
    reply = _order_reply(found, urls, location=True)
    reply.links.append(_index_link(urls))
    return reply


@acme_endpoint("POST")
def authorization(request: HttpRequest, app: str, authz_id: str) -> Reply:
    account, auth = _account_auth(request, app)
    challenges = _owned(_authz_challenges, "authorization", account, authz_id=authz_id)
    authz = services.deactivate_authorization(challenges[0].authorization, auth)
    urls = _order_urls(request, account.application, challenges[0].order_profile_id)
    body = messages.authorization_json(authz, challenges, urls)
    pending = authz.status == "pending" and any(c.status == "processing" for c in challenges)
    return Reply(
        body,
        links=[_index_link(urls)],
        retry_after=settings.CERTPORTAL_ACME_RETRY_AFTER_SECONDS if pending else None,
    )


@acme_endpoint("POST")
def challenge(request: HttpRequest, app: str, challenge_id: str) -> Reply:
    account, auth = _account_auth(request, app)
    found = _owned(_account_challenge, "challenge", account, challenge_id=challenge_id)[0]
    answered = services.await_validation(services.answer_challenge(found, auth))
    urls = _order_urls(request, account.application, found.order_profile_id)
    return Reply(
        messages.challenge_json(answered, urls),
        links=[_index_link(urls), (urls.obj("authz", answered.authorization_id), "up")],
        retry_after=settings.CERTPORTAL_ACME_RETRY_AFTER_SECONDS
        if answered.status == "processing"
        else None,
    )


# --- Certificates -----------------------------------------------------------------------


def _account_certificate(account_id: str, certificate_id: uuid.UUID) -> list[tuple[Any, ...]]:
    """Only the columns the download needs: no Order or Certificate model instances."""
    return list(
        Order.objects.filter(account_id=account_id, certificate_id=certificate_id)
        .values_list(
            "profile_id",
            "certificate__certificate_pem",
            "certificate__chain_pem",
            "certificate__ca_id",
        )
        .order_by()[:1]
    )


@acme_endpoint("POST")
def certificate(request: HttpRequest, app: str, cert_id: str) -> Reply:
    account, _ = _account_auth(request, app)
    try:
        certificate_id = uuid.UUID(cert_id)
    except ValueError:
        certificate_id = None
    found = (
        _account_certificate(account_id=account.pk, certificate_id=certificate_id)
        if certificate_id
        else None
    )
    if not found:
        raise AcmeProblem("malformed", "No such certificate for this account.", 404)
    profile_id, certificate_pem, chain_pem, ca_id = found[0]
    urls = _order_urls(request, account.application, profile_id)
    return Reply(
        services.certificate_chain_pem(certificate_pem, chain_pem, ca_id),
        content_type=messages.PEM_CHAIN,
        links=[_index_link(urls)],
    )


@acme_endpoint("POST")
def revoke_cert(request: HttpRequest, app: str, profile: str) -> Reply:
    application, _ = _directory(app, profile)
    auth = _auth(request, app, want_jwk=None)
    services.revoke(application, auth)
    return Reply()


@acme_endpoint("GET")
def renewal_info(request: HttpRequest, app: str, profile: str, cert_id: str) -> Reply:
    application, _ = _directory(app, profile)
    found: Certificate | None = services.find_certificate_by_ari_id(application, cert_id)
    if found is None:
        raise AcmeProblem("malformed", "No such certificate.", 404)
    start, end = renewal_window(found)
    return Reply(
        messages.renewal_info(start, end),
        retry_after=settings.CERTPORTAL_ACME_ARI_RETRY_AFTER_SECONDS,
    )
