"""Which formats exist, and building the configured sources from settings (once, at start-up)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from shared.config.exceptions import ConfigurationError
from shared.config.settings import SourceSettings
from shared.sources.base import SourceFormat
from shared.sources.exceptions import SourceConfigurationError, UnknownSource

#: Format name -> the module that implements it. Modules are imported when a configured source uses
#: them, so an app that only receives, say, xAPI never pays for Canvas's JWT and crypto imports.
FORMATS: Mapping[str, str] = {
    "generic": "generic",
    "xapi": "xapi",
    "caliper": "caliper",
    "thinkific": "thinkific",
    "canvas": "canvas",
    "teachable": "teachable",
    "docebo": "docebo",
    "360learning": "three_sixty_learning",
    "learnworlds": "learnworlds",
}


def format_class(name: str) -> type[SourceFormat] | None:
    """The SourceFormat subclass of a format name, or None when there is no such format."""
    module_name = FORMATS.get(name)
    if module_name is None:
        return None
    module = importlib.import_module(f"shared.sources.formats.{module_name}")
    return next(
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, SourceFormat)
        and getattr(value, "format_name", None) == name
    )


def build_source(settings: SourceSettings, *, offline: bool = False) -> SourceFormat:
    """A configured source; `offline` builds a parser only (no secret needed, cannot authenticate)."""
    implementation = format_class(settings.format)
    if implementation is None:
        known = ", ".join(sorted(FORMATS))
        raise SourceConfigurationError(
            f"source {settings.name!r}: unknown format {settings.format!r} (known: {known})."
        )
    return implementation(settings, offline=offline)


def build_sources(sources: Mapping[str, SourceSettings]) -> dict[str, SourceFormat]:
    """Every configured source, or one ConfigurationError naming every broken one."""
    built: dict[str, SourceFormat] = {}
    problems: list[str] = []
    for name, settings in sources.items():
        try:
            built[name] = build_source(settings)
        except SourceConfigurationError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigurationError(problems)
    return built


def format_without_secret(format_name: str, source_name: str | None = None) -> SourceFormat:
    """A format with default options and no secret, for offline translation (CLI `translate`)."""
    if format_name not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise UnknownSource(f"unknown format {format_name!r} (known: {known})")
    settings = SourceSettings(name=source_name or format_name, format=format_name)
    return build_source(settings, offline=True)
