"""Routes of the workspace pages, mounted at the site's root by ``governance.urls``."""

from django.urls import path

from governance.workspace import home, model_page, tokens

app_name = "workspace"

urlpatterns = [
    path("", home.home, name="home"),
    path("models/<str:name>/", model_page.model_page, name="model"),
    path("tokens/", tokens.token_list, name="tokens"),
    path("tokens/<int:token_id>/revoke/", tokens.token_revoke, name="token_revoke"),
]
