"""One module per platform format, each a `SourceFormat` (see shared/sources/base.py)."""
