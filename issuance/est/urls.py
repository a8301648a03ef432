from django.urls import path, re_path

from issuance.est import ui, views

app_name = "est"

_LABEL = r"^\.well-known/est/(?P<label>[A-Za-z0-9][A-Za-z0-9._-]{0,99})/"
_DEFAULT = r"^\.well-known/est/"
_OPERATIONS = {
    "cacerts": views.cacerts,
    "csrattrs": views.csrattrs,
    "simpleenroll": views.simpleenroll,
    "simplereenroll": views.simplereenroll,
    "serverkeygen": views.serverkeygen,
    "fullcmc": views.fullcmc,
}

urlpatterns = [
    *(re_path(_LABEL + op + "$", view, name=op) for op, view in _OPERATIONS.items()),
    *(re_path(_DEFAULT + op + "$", view, name=f"default-{op}") for op, view in _OPERATIONS.items()),
    # Portal pages of the Application's Enrollment tab.
    path("applications/<slug:slug>/est/new", ui.enrollment_create, name="enrollment-create"),
    path("applications/<slug:slug>/est/<int:pk>/edit", ui.enrollment_edit, name="enrollment-edit"),
    path(
        "applications/<slug:slug>/est/<int:pk>/delete",
        ui.enrollment_delete,
        name="enrollment-delete",
    ),
    path(
        "applications/<slug:slug>/est/<int:pk>/credentials/new",
        ui.credential_create,
        name="credential-create",
    ),
    path(
        "applications/<slug:slug>/est/<int:pk>/credentials/<int:cred>/revoke",
        ui.credential_revoke,
        name="credential-revoke",
    ),
]
