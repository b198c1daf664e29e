"""The captive portal: a Flask app factory and its blueprints (captive detection, login flows, members, admin).

``create_app`` is defined in ``portal.app``; import it from there.
"""
