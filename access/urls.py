"""URLs of the access pages."""

from django.urls import path

from access import views

app_name = "access"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("refresh/", views.refresh_my_roles, name="refresh_my_roles"),
    path("roles/", views.roles, name="roles"),
    path("roles/<str:name>/", views.role_detail, name="role_detail"),
]
