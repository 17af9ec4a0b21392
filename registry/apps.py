from django.apps import AppConfig


class RegistryConfig(AppConfig):
    """Registered models, their versions, datasets and lineage."""

    name = "registry"
    verbose_name = "Model registry"
