"""Product-admin pages: certificate authorities and certificate profiles.

These pages exist only for product admins; everyone else gets 404 (anonymous users are
sent to the login page first).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from certportal.web import actor_for, add_refusal_to_form, require_product_admin
from pki import certs
from profiles import services
from profiles.choices import CAKind, Preset
from profiles.forms import (
    CAForm,
    CAStatusForm,
    ImportCAForm,
    InstallCertificateForm,
    ProfileForm,
)
from profiles.models import CertificateAuthority, CertificateProfile
from profiles.presets import preset_fields

CA_KINDS = {"root": "Internal root CA", "intermediate": "Internal intermediate CA",
            "external": "Externally signed CA (key and CSR here)"}  # fmt: skip


@login_required
@require_safe
def ca_list(request: HttpRequest) -> HttpResponse:
    require_product_admin(request)
    authorities = CertificateAuthority.objects.select_related("parent")
    return render(request, "profiles/ca_list.html", {"authorities": authorities, "kinds": CA_KINDS})


def _spec(data: dict[str, Any]) -> services.CASpec:
    return services.CASpec(
        name=data["name"],
        slug=data["slug"],
        subject=services.CASubject(
            data["common_name"],
            data["organization"],
            data["organizational_unit"],
            data["country"].upper(),
        ),
        key_algorithm=data["key_algorithm"],
        validity_days=data["validity_days"],
        path_length=data["path_length"],
        permitted_dns=tuple(data["permitted_dns"]),
        excluded_dns=tuple(data["excluded_dns"]),
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def ca_create(request: HttpRequest, kind: str) -> HttpResponse:
    require_product_admin(request)
    if kind not in CA_KINDS:
        return redirect("profiles:ca-list")
    form = CAForm(request.POST or None, with_parent=kind == "intermediate")
    if request.method == "POST" and form.is_valid():
        spec, actor = _spec(form.cleaned_data), actor_for(request)
        try:
            if kind == "root":
                ca = services.create_root_ca(spec, actor=actor)
            elif kind == "intermediate":
                parent = form.cleaned_data["parent"]
                ca = services.create_intermediate_ca(spec, parent=parent, actor=actor)
            else:
                ca = services.create_external_ca(spec, actor=actor)
        except services.CAError as exc:
            add_refusal_to_form(form, exc)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"CA {ca.name} created.")
            return redirect("profiles:ca-detail", slug=ca.slug)
    context = {"form": form, "kind": kind, "title": CA_KINDS[kind]}
    return render(request, "profiles/ca_form.html", context, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def ca_import(request: HttpRequest) -> HttpResponse:
    require_product_admin(request)
    form = ImportCAForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            ca = services.import_ca(
                name=data["name"],
                slug=data["slug"],
                certificate_pem=data["certificate_pem"],
                private_key_pem=data["private_key_pem"],
                password=data["password"].encode() if data["password"] else None,
                actor=actor_for(request),
            )
        except services.CAError as exc:
            add_refusal_to_form(form, exc)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"CA {ca.name} imported.")
            return redirect("profiles:ca-detail", slug=ca.slug)
    context = {"form": form, "kind": "import", "title": "Import an existing CA"}
    return render(request, "profiles/ca_form.html", context, status=400 if form.errors else 200)


def _ca_page(request: HttpRequest, ca: CertificateAuthority, **extra: Any) -> HttpResponse:
    context = {
        "ca": ca,
        "info": certs.describe_certificate(ca.certificate()) if ca.certificate_pem else None,
        "install_form": extra.pop("install_form", InstallCertificateForm()),
        "status_form": CAStatusForm(initial={"status": ca.status}),
        "profiles": ca.profiles.all(),
        "is_external_pending": ca.kind == CAKind.EXTERNAL and not ca.certificate_pem,
    }
    return render(request, "profiles/ca_detail.html", context, **extra)


@login_required
@require_safe
def ca_detail(request: HttpRequest, slug: str) -> HttpResponse:
    require_product_admin(request)
    return _ca_page(request, get_object_or_404(CertificateAuthority, slug=slug))


@login_required
@require_POST
def ca_install(request: HttpRequest, slug: str) -> HttpResponse:
    require_product_admin(request)
    ca = get_object_or_404(CertificateAuthority, slug=slug)
    form = InstallCertificateForm(request.POST)
    if form.is_valid():
        try:
            services.install_external_certificate(
                ca, form.cleaned_data["certificate_pem"], actor=actor_for(request)
            )
        except services.CAError as exc:
            add_refusal_to_form(form, exc)
        else:
            messages.success(request, "Certificate installed; the CA is active.")
            return redirect("profiles:ca-detail", slug=ca.slug)
    return _ca_page(request, ca, install_form=form, status=400)


@login_required
@require_POST
def ca_status(request: HttpRequest, slug: str) -> HttpResponse:
    require_product_admin(request)
    ca = get_object_or_404(CertificateAuthority, slug=slug)
    form = CAStatusForm(request.POST)
    if form.is_valid():
        try:
            services.set_ca_status(ca, form.cleaned_data["status"], actor=actor_for(request))
            messages.success(request, f"{ca.name} is now {ca.get_status_display().lower()}.")
        except services.CAError as exc:
            messages.error(request, str(exc))
    return redirect("profiles:ca-detail", slug=ca.slug)


# --- Profiles -----------------------------------------------------------------------------


@login_required
@require_safe
def profile_list(request: HttpRequest) -> HttpResponse:
    require_product_admin(request)
    profiles = CertificateProfile.objects.select_related("issuing_ca")
    context = {
        "profiles": profiles,
        "presets": Preset.choices,
        # Called by the template only when there is no profile (its empty state).
        "has_ca": CertificateAuthority.objects.exists,
    }
    return render(request, "profiles/profile_list.html", context)


def _save_profile(
    request: HttpRequest, form: ProfileForm, profile: CertificateProfile | None
) -> CertificateProfile | None:
    """Create or update through the service; model validation errors land on the form."""
    try:
        if profile is None:
            return services.create_profile(actor=actor_for(request), **form.cleaned_data)
        return services.update_profile(profile, actor=actor_for(request), **form.cleaned_data)
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    return None


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def profile_create(request: HttpRequest) -> HttpResponse:
    require_product_admin(request)
    preset = request.GET.get("preset", Preset.TLS_SERVER)
    initial = {**preset_fields(preset), "preset": preset} if preset in Preset.values else {}
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        profile = _save_profile(request, form, None)
        if profile is not None:
            messages.success(request, f"Profile {profile.name} created.")
            return redirect("profiles:profile-list")
    context = {"form": form, "presets": Preset.choices, "preset": preset, "profile": None}
    return render(
        request, "profiles/profile_form.html", context, status=400 if form.errors else 200
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def profile_edit(request: HttpRequest, slug: str) -> HttpResponse:
    require_product_admin(request)
    profile = get_object_or_404(CertificateProfile, slug=slug)
    initial = {name: getattr(profile, name) for name in ProfileForm.base_fields}
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        saved = _save_profile(request, form, profile)
        if saved is not None:
            messages.success(request, f"Profile {saved.name} saved.")
            return redirect("profiles:profile-list")
        profile.refresh_from_db()
    context = {"form": form, "presets": Preset.choices, "profile": profile}
    return render(
        request, "profiles/profile_form.html", context, status=400 if form.errors else 200
    )
