"""URLs of the access pages."""

from django.urls import path

from access import review_views, views

app_name = "access"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("refresh/", views.refresh_my_roles, name="refresh_my_roles"),
    path("roles/", views.roles, name="roles"),
    path("roles/<str:name>/", views.role_detail, name="role_detail"),
    path("requests/new/", views.request_new, name="request_new"),
    path("requests/break-glass/", views.request_break_glass, name="request_break_glass"),
    path("requests/<int:request_id>/", views.request_detail, name="request_detail"),
    path("requests/<int:request_id>/cancel/", views.request_cancel, name="request_cancel"),
    path("requests/<int:request_id>/retry/", views.request_retry, name="request_retry"),
    path("requests/<int:request_id>/revoke/", views.request_revoke, name="request_revoke"),
    path("approvals/", views.approvals, name="approvals"),
    path("audit/", views.audit, name="audit"),
    path("approvals/count/", views.approvals_count, name="approvals_count"),
    path("approvals/bulk/", views.approvals_bulk, name="approvals_bulk"),
    path("approvals/resume/", views.approvals_resume, name="approvals_resume"),
    path("approvals/<int:request_id>/", views.approval_decide, name="approval_decide"),
    path("reviews/", review_views.reviews, name="reviews"),
    path("reviews/evidence/", review_views.reviews_evidence, name="reviews_evidence"),
    path("reviews/report/", review_views.access_report, name="access_report"),
    path("reviews/<int:review_id>/", review_views.review_detail, name="review_detail"),
    path("reviews/<int:review_id>/decide/", review_views.review_decide_one, name="review_decide"),
    path("reviews/<int:review_id>/bulk/", review_views.review_bulk, name="review_bulk"),
    path(
        "reviews/<int:review_id>/complete/",
        review_views.review_complete_view,
        name="review_complete",
    ),  # fmt: skip
    path("reviews/<int:review_id>/retry/", review_views.review_retry, name="review_retry"),
    path(
        "reviews/<int:review_id>/evidence/", review_views.review_evidence, name="review_evidence"
    ),  # fmt: skip
]
