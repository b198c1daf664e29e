"""The portal's blueprints: HTTP in, calls into the store and the core, pages and JSON out."""
