"""keliu.db on the embedded SQLite: a transaction that reads and then writes while another connection commits."""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from keliu import db


def test_a_read_then_write_transaction_takes_the_write_lock_first(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    engine = db.make_engine(url)
    other = db.make_engine(url, connect_args={"timeout": 0.2})
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x int)")
    # without it: a transaction that has read (here inside a savepoint, as a coupon's issue is) cannot write once
    # another connection has committed since — it fails at once, whatever the busy timeout (what the demo's logins
    # met while the sensors wrote)
    with pytest.raises(sa.exc.OperationalError, match="locked"), engine.begin() as conn, conn.begin_nested():
        conn.exec_driver_sql("SELECT count(*) FROM t").scalar()
        with other.begin() as o:
            o.exec_driver_sql("INSERT INTO t VALUES (2)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    # with it the transaction holds the write lock from its start: its own write goes through, and another writer
    # waits for it (here only its 0.2 s, then gives up) instead of invalidating it
    with engine.begin() as conn:
        db.write_first(conn)
        with conn.begin_nested():
            conn.exec_driver_sql("SELECT count(*) FROM t").scalar()
            with pytest.raises(sa.exc.OperationalError, match="locked"), other.begin() as o:
                o.exec_driver_sql("INSERT INTO t VALUES (3)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT x FROM t ORDER BY x").scalars().all() == [1, 2]
