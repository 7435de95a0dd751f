"""The local stack (`make run`): Azurite, the Graph sandbox and the dev host, on their default ports."""
