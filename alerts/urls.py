from django.urls import path

from alerts import views

app_name = "alerts"

_APP = "applications/<slug:slug>/"

urlpatterns = [
    path(_APP + "alerts/", views.alerting, name="alerting"),
    path(_APP + "alerts/channels/new/", views.channel_edit, name="channel-new"),
    path(_APP + "alerts/channels/<int:pk>/", views.channel_edit, name="channel"),
    path(_APP + "alerts/channels/<int:pk>/test/", views.channel_test, name="channel-test"),
    path(_APP + "alerts/rules/new/", views.rule_edit, name="rule-new"),
    path(_APP + "alerts/rules/<int:pk>/", views.rule_edit, name="rule"),
]
