"""App settings: read once at start-up, validated, never logged with secret values."""

from shared.config.exceptions import AppNotConfigured, ConfigurationError
from shared.config.settings import (
    DEFAULT_GRAPH_BASE_URL,
    DEFAULT_MAX_BODY_BYTES,
    GraphAuth,
    Settings,
    SourceSettings,
    load_settings,
    load_source_settings,
    read_local_settings,
    secret_setting_name,
)

__all__ = [
    "DEFAULT_GRAPH_BASE_URL",
    "DEFAULT_MAX_BODY_BYTES",
    "AppNotConfigured",
    "ConfigurationError",
    "GraphAuth",
    "Settings",
    "SourceSettings",
    "load_settings",
    "load_source_settings",
    "read_local_settings",
    "secret_setting_name",
]
