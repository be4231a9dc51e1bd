"""The debugger's redaction of credentials in stored request bodies."""

from __future__ import annotations

import json

from kpihub.oauth.secrets import new_secret
from kpihub.web.redact import REDACTED, redact

TOKEN = "eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJraF90ZXN0In0.c2lnbmF0dXJl"


def test_members_named_after_credentials_are_hidden_in_place() -> None:
    body = {
        "type": "acme-pos",
        "client_secret": "anything at all",
        "Password": 'with "quotes" \\ inside',
        "data": [{"user_id": "u1", "elements": [{"id": "1", "access_token": "x"}]}],
    }
    for text in (json.dumps(body), json.dumps(body, indent=2)):
        doc = json.loads(redact(text))
        assert doc["client_secret"] == doc["Password"] == REDACTED
        assert doc["data"][0]["elements"][0]["access_token"] == REDACTED
        assert doc["type"] == "acme-pos" and doc["data"][0]["user_id"] == "u1"


def test_secrets_and_tokens_are_hidden_wherever_they_are() -> None:
    secret = new_secret()
    text = f'{{"value": "{secret}", "units": "{TOKEN}", "note": "cut {secret[:14]}"}}'
    shown = redact(text)
    assert secret not in shown and TOKEN not in shown and secret[4:14] not in shown
    assert json.loads(shown) == {"value": REDACTED, "units": REDACTED, "note": f"cut {REDACTED}"}


def test_kpi_data_is_left_alone() -> None:
    text = json.dumps(
        {"type": "pos", "context": "sales", "data": [{"elements": [{"kpi": "token", "value": 3}]}]}
    )
    assert redact(text) == text
