"""The docs site (docs/, mkdocs.yml): its build-time hook and the `make test` step that builds it."""
