"""Reading ``GET /metrics`` back: the samples of one scrape, by name and labels."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape_text(http: httpx.Client, url: str = "/metrics") -> tuple[str, Samples]:
    """The exposition text at ``url`` and its samples by (name, labels)."""
    response = http.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    return response.text, samples


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def value(samples: Samples, name: str, **labels: str) -> float:
    """``sample``, with a series that was never touched counting as 0."""
    return sample(samples, name, **labels) or 0.0
