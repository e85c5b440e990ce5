"""URLs of sign-in and sign-out."""

from django.urls import path

from portal.auth import views

app_name = "auth"

urlpatterns = [
    path("login/", views.login, name="login"),
    path("callback/", views.callback, name="callback"),
    path("logout/", views.logout, name="logout"),
]
