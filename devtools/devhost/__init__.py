"""A stand-in for the Azure Functions host (HTTP and queue triggers), for machines without Core Tools."""
