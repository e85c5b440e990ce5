"""Root URL configuration."""

from django.contrib import admin
from django.urls import path

from portal import views

urlpatterns = [
    path("", views.home, name="home"),
    # Also answered by HealthCheckMiddleware before host checks; routed here for reverse().
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
]
