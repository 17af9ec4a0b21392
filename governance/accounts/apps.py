from django.apps import AppConfig


class AccountServicesConfig(AppConfig):
    """The audited use cases on accounts: services, admin, the ``create_service_account``
    command, the sign-in throttles and their security events. It has no models: those are
    ``core.accounts`` (label ``accounts``), below the audit log that these use cases write to.
    """

    name = "governance.accounts"
    label = "account_services"
    verbose_name = "Account services"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from governance.accounts.roles import sync_role_permissions

        post_migrate.connect(sync_role_permissions, dispatch_uid="accounts.sync_roles")
