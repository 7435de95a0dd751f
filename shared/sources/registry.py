"""Which formats exist, and building the configured sources from settings (once, at start-up)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.config.exceptions import ConfigurationError
from shared.config.settings import SOURCES, SourceSettings, secret_setting_name
from shared.sources.base import FormatOptions, SourceFormat, progress_problems
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
    problems += progress_problems({name: source.options for name, source in built.items()}).values()
    if problems:
        raise ConfigurationError(problems)
    return built


@dataclass(frozen=True)
class UnavailableSource:
    """A configured source that cannot take deliveries, and why (naming settings, never values)."""

    name: str
    reason: str
    #: The app setting to fix first: the secret's, or BRIDGE_SOURCES for the definition and options.
    setting: str
    #: Its options when they are valid (events it queued before it was set aside still need them).
    options: FormatOptions | None = None
    #: The routes its format answers on, when the format is known.
    endpoints: frozenset[str] = field(default_factory=lambda: frozenset({"webhook", "xapi"}))


@dataclass(frozen=True)
class SourceCatalog:
    """The sources that work, and those set aside at start-up (see `build_isolated_sources`)."""

    available: dict[str, SourceFormat]
    unavailable: dict[str, UnavailableSource]


def build_isolated_sources(
    sources: Mapping[str, SourceSettings], definition_problems: Mapping[str, str] | None = None
) -> SourceCatalog:
    """Every configured source that can be built; each one that cannot is set aside with its reason.

    One source's missing secret or bad options must never stop the others (or the queue side): the
    app starts, that source answers 503, and the health endpoint and start-up log say why.
    """
    available: dict[str, SourceFormat] = {}
    unavailable = {
        name: UnavailableSource(name, reason, SOURCES) for name, reason in (definition_problems or {}).items()
    }
    for name, settings in sources.items():
        try:
            available[name] = build_source(settings)
        except SourceConfigurationError as exc:
            unavailable[name] = _unavailable(settings, str(exc))
    known = {name: source.options for name, source in available.items()}
    known.update((name, aside.options) for name, aside in unavailable.items() if aside.options is not None)
    for name, problem in progress_problems(known).items():
        if name in available:
            del available[name]
            unavailable[name] = _unavailable(sources[name], problem)
    return SourceCatalog(available, unavailable)


def _unavailable(settings: SourceSettings, problem: str) -> UnavailableSource:
    implementation = format_class(settings.format)
    secret_setting = secret_setting_name(settings.name)
    try:  # valid options but no secret: an offline build still reads the options
        options = build_source(settings, offline=True).options
    except SourceConfigurationError:
        options = None
    lacks_secret = options is not None and implementation is not None and implementation.requires_secret
    reasons = [problem]
    if settings.secret_problem and lacks_secret:
        reasons.append(settings.secret_problem)
    return UnavailableSource(
        name=settings.name,
        reason=" ".join(reasons),
        setting=secret_setting if lacks_secret else SOURCES,
        options=options,
        endpoints=implementation.endpoints if implementation is not None else frozenset({"webhook", "xapi"}),
    )


def format_without_secret(format_name: str, source_name: str | None = None) -> SourceFormat:
    """A format with default options and no secret, for offline translation (CLI `translate`)."""
    if format_name not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise UnknownSource(f"unknown format {format_name!r} (known: {known})")
    settings = SourceSettings(name=source_name or format_name, format=format_name)
    return build_source(settings, offline=True)
