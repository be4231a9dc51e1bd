"""The dashboard's routes; none is part of the API, so none is in ``/openapi.json``."""

from __future__ import annotations

from starlette.routing import Route

from kpihub.web.static import static_file
from kpihub.web.views import credentials, debugger, explorer, overview, session

_GET, _POST = ["GET"], ["POST"]
_CLIENT = "/credentials/clients/{client_id}"

routes = [
    Route(path, endpoint, methods=methods, include_in_schema=False)
    for path, endpoint, methods in [
        ("/", overview.overview, _GET),
        ("/login", session.login_form, _GET),
        ("/login", session.login, _POST),
        ("/logout", session.logout, _POST),
        ("/environment", session.switch_environment, _POST),
        ("/explorer", explorer.explorer, _GET),
        ("/explorer.csv", explorer.explorer_csv, _GET),
        ("/debugger", debugger.requests, _GET),
        ("/debugger/{batch_id}", debugger.request_detail, _GET),
        ("/debugger/{batch_id}/body", debugger.request_body, _GET),
        ("/credentials", credentials.credentials, _GET),
        ("/credentials/clients", credentials.create_client, _POST),
        (f"{_CLIENT}/rotate", credentials.rotate_secret, _POST),
        (f"{_CLIENT}/retire-old-secret", credentials.retire_old_secret, _POST),
        (f"{_CLIENT}/revoke", credentials.revoke, _POST),
        (f"{_CLIENT}/rate-limit", credentials.set_rate_limit, _POST),
        ("/credentials/integrations", credentials.register_integration, _POST),
        ("/static/{path:path}", static_file, _GET),
    ]
]
