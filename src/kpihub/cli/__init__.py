"""The ``kpihub`` command line: administration, serving, and the demo set-up."""
