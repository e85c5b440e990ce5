"""URLs of the catalog pages."""

from django.urls import path

from catalog import views

app_name = "catalog"

urlpatterns = [
    path("", views.entity_list, name="entity_list"),
    path("locations/", views.location_register_page, name="location_register"),
    path("<str:namespace>/<str:kind>/<str:name>/", views.entity_detail, name="entity_detail"),
]
