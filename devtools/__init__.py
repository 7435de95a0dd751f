"""Development-only tools: the local Graph sandbox, the dev host, the local stack. Never deployed
(see .funcignore); the bridge itself never imports from here."""
