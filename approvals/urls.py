from django.urls import path

from approvals import views

app_name = "approvals"

urlpatterns = [
    path("approvals/", views.inbox, name="inbox"),
    path("approvals/<uuid:pk>/", views.request_detail, name="request"),
    path("applications/<slug:slug>/approvals/", views.policies, name="policies"),
    path("applications/<slug:slug>/approvals/new/", views.policy_edit, name="policy-new"),
    path("applications/<slug:slug>/approvals/<int:pk>/", views.policy_edit, name="policy-edit"),
    path(
        "applications/<slug:slug>/approvals/<int:pk>/delete/",
        views.policy_delete,
        name="policy-delete",
    ),
]
