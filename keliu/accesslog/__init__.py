"""The access and NAT log the law requires (MPS Order 82, Cybersecurity Law art. 21): tamper-evident, retained.

- :mod:`keliu.accesslog.chain` (pure): a record's canonical bytes, the hash chain, checking a run of records;
- :mod:`keliu.accesslog.tables`: the ``access_log`` table and its chain head (migrations: ``portal/migrations``,
  branch ``accesslog``);
- :mod:`keliu.accesslog.store` (an edge: SQL): appending in the caller's transaction, the PostgreSQL statement
  builders the portal's one-statement login uses, verify, query, export, anchors and the retention purge;
- :mod:`keliu.accesslog.signing` (an edge: a key in ``var/keys``): Ed25519 signatures of anchors and purges;
- :mod:`keliu.accesslog.cli`: ``keliu accesslog verify|query|export|anchor|purge|public-key``.

It sits in the shared base, beside the other keys and tables every component may use, because the portal writes
it (its sessions) and the analytics Celery beat purges it (analytics may not import the portal).
"""
