"""Which formats exist, and building the configured sources from settings (once, at start-up)."""

from __future__ import annotations

from collections.abc import Mapping

from shared.config.exceptions import ConfigurationError
from shared.config.settings import SourceSettings
from shared.sources.base import SourceFormat
from shared.sources.exceptions import SourceConfigurationError, UnknownSource
from shared.sources.formats.caliper import CaliperFormat
from shared.sources.formats.canvas import CanvasFormat
from shared.sources.formats.docebo import DoceboFormat
from shared.sources.formats.generic import GenericFormat
from shared.sources.formats.learnworlds import LearnWorldsFormat
from shared.sources.formats.teachable import TeachableFormat
from shared.sources.formats.thinkific import ThinkificFormat
from shared.sources.formats.three_sixty_learning import ThreeSixtyLearningFormat
from shared.sources.formats.xapi import XapiFormat

FORMATS: Mapping[str, type[SourceFormat]] = {
    format_class.format_name: format_class
    for format_class in (
        GenericFormat,
        XapiFormat,
        CaliperFormat,
        ThinkificFormat,
        CanvasFormat,
        TeachableFormat,
        DoceboFormat,
        ThreeSixtyLearningFormat,
        LearnWorldsFormat,
    )
}


def build_source(settings: SourceSettings, *, offline: bool = False) -> SourceFormat:
    """A configured source; `offline` builds a parser only (no secret needed, cannot authenticate)."""
    format_class = FORMATS.get(settings.format)
    if format_class is None:
        known = ", ".join(sorted(FORMATS))
        raise SourceConfigurationError(
            f"source {settings.name!r}: unknown format {settings.format!r} (known: {known})."
        )
    return format_class(settings, offline=offline)


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
