from django.urls import URLPattern

app_name = "acme"

urlpatterns: list[URLPattern] = []
