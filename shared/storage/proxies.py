"""Whether the storage clients should read proxy settings from the environment.

azure-core's transports trust the environment by default. For its aiohttp transport (the state
store's Table client) that means aiohttp looks up ~/.netrc and the proxy variables in a worker thread
on every request: two thread hops per Table request. Without them an update's worker CPU went from
20.5 to 15.1 ms (`python -m devtools.bench.cpu --baseline <the commit before>`, two rounds). requests
(the queue clients) does the same lookups inline. A Functions app has neither a netrc nor, usually,
a proxy; and a netrc entry for the storage host would clash with the Authorization header the SDK
signs. So the environment is trusted only when it configures something the client reads from it: a
proxy (both), or a CA bundle (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE: requests only; aiohttp does not
read them); then behaviour is unchanged.
"""

from __future__ import annotations

import os

#: The variables aiohttp and requests read for proxies (either case), and requests for CA bundles.
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def trust_environment(*, requests: bool = False) -> bool:
    """For aiohttp (the Table client), or with `requests` for the requests transport (the queues)."""
    proxied = any(os.environ.get(name) or os.environ.get(name.lower()) for name in PROXY_VARIABLES)
    return proxied or (requests and any(os.environ.get(name) for name in CA_BUNDLE_VARIABLES))
