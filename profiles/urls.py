from django.urls import path

from profiles import views

app_name = "profiles"

urlpatterns = [
    path("cas/", views.ca_list, name="ca-list"),
    path("cas/new/<str:kind>/", views.ca_create, name="ca-create"),
    path("cas/import/", views.ca_import, name="ca-import"),
    path("cas/<slug:slug>/", views.ca_detail, name="ca-detail"),
    path("cas/<slug:slug>/install/", views.ca_install, name="ca-install"),
    path("cas/<slug:slug>/status/", views.ca_status, name="ca-status"),
    path("profiles/", views.profile_list, name="profile-list"),
    path("profiles/new/", views.profile_create, name="profile-create"),
    path("profiles/<slug:slug>/", views.profile_edit, name="profile-edit"),
]
