"""The read side: points, series, leaderboards and the catalog of what was stored.

``params`` turns query strings into frozen dataclasses (or a 422 listing every
problem), ``buckets`` finds calendar bucket boundaries in a time zone, ``rollup``
combines the store's per-slot aggregates into those buckets, ``routes`` serves it all
under ``/api/external/{api_version}/kpi``.
"""
