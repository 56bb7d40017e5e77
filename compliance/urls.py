from django.urls import include, path

urlpatterns = [
    path("v1/", include("compliance.api.urls")),
    path("", include("compliance.web.urls")),
]
