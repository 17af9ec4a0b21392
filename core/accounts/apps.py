from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """People, service accounts and API keys: the models, their hashing and how a caller
    becomes an audit actor. The label stays ``accounts`` (``AUTH_USER_MODEL``, the tables,
    the migrations and the permissions' app label are unchanged by where the code lives).

    The audited use cases on accounts (services, the role-permission sync after migrate, the
    sign-in security events, the admin) sit above the audit log, in ``governance.accounts``.
    """

    name = "core.accounts"
    label = "accounts"
    verbose_name = "Accounts"
