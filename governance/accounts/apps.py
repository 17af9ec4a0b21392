from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """People, service accounts, API keys and the role groups."""

    name = "governance.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from governance.accounts.roles import sync_role_permissions

        post_migrate.connect(sync_role_permissions, dispatch_uid="accounts.sync_roles")
