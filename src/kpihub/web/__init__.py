"""The tenant dashboard: server-rendered pages at ``https://{tenant}.{base_domain}/``.

``routes`` lists the pages (none is in the OpenAPI document), ``auth`` holds sign-in,
sessions and CSRF, ``views/`` one module per page, ``templates/`` and ``static/`` what
they render and ship (Chart.js is vendored in ``static/vendor``: no CDN at run time).
"""
