from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    name = "governance.workspace"
    label = "workspace"
    verbose_name = "Workspace"
