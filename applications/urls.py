from django.urls import path

from applications import views

app_name = "applications"

urlpatterns = [
    path("applications/", views.application_list, name="list"),
    path("applications/new/", views.application_create, name="create"),
    path("applications/<slug:slug>/", views.overview, name="overview"),
    path("applications/<slug:slug>/edit/", views.application_edit, name="edit"),
    path("applications/<slug:slug>/members/", views.members, name="members"),
    path(
        "applications/<slug:slug>/members/<int:user_id>/role/",
        views.member_role,
        name="member-role",
    ),
    path(
        "applications/<slug:slug>/members/<int:user_id>/remove/",
        views.member_remove,
        name="member-remove",
    ),
    path("applications/<slug:slug>/enrollment/", views.enrollment, name="enrollment"),
    path("applications/<slug:slug>/audit/", views.audit_log, name="audit"),
    path("audit/", views.global_audit_log, name="audit-global"),
]
