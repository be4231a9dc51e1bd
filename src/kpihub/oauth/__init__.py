"""OAuth 2.0 client credentials: secrets, client authentication, token requests, JWTs.

The modules here are free of I/O so they can be tested without a server:

- ``secrets``: client ids and secrets, their keyed hashes, constant-time checks.
- ``basic``: HTTP Basic client authentication (RFC 6749 §2.3.1).
- ``schemes``: naming an Authorization scheme in a message without echoing a credential.
- ``token_request``: parsing a ``POST /oauth/token`` request into a ``TokenRequest``.
- ``jwt``: RFC 9068 JWT access tokens signed with Ed25519, and the JWKS.
"""
