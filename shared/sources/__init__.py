"""Sources: how a learning platform authenticates a delivery and what its body means.

Public surface: `SourceFormat` (the interface), `Delivery`, `ParseResult`, `Ignored`,
`build_sources` (from settings) and the exceptions that map to HTTP answers.
"""

from shared.sources.base import Delivery, Ignored, ParseResult, SourceFormat
from shared.sources.exceptions import (
    AuthenticationFailed,
    FieldProblem,
    InvalidPayload,
    SourceConfigurationError,
    SourceError,
    UnknownSource,
    UnsupportedMediaType,
)
from shared.sources.registry import FORMATS, build_source, build_sources, format_without_secret

__all__ = [
    "FORMATS",
    "AuthenticationFailed",
    "Delivery",
    "FieldProblem",
    "Ignored",
    "InvalidPayload",
    "ParseResult",
    "SourceConfigurationError",
    "SourceError",
    "SourceFormat",
    "UnknownSource",
    "UnsupportedMediaType",
    "build_source",
    "build_sources",
    "format_without_secret",
]
