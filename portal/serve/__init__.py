"""Serving the app: gunicorn with the portal's worker, the captive front, the sans-io HTTP/1.1 core they share."""
