"""kpihub: a self-hostable KPI integration platform."""

__version__ = "0.1.0"
