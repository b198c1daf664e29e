"""Grafana for fleets: dashboards as code (``boards``), provisioning files (``provisioning``), the committed tree
(``files``) and pushing through the Grafana HTTP API (``push``)."""
