"""Unfinished session exports: kept across a restart, bounded, old and damaged ones dropped."""
from edge.store.db import open_db
from edge.store.export_jobs import ExportJobs


def _req(rid, **extra):
    return dict({"request_id": rid, "type": "sessions_request", "from_s": 0, "to_s": 100}, **extra)


def test_progress_survives_a_restart_and_finish_removes_the_job(tmp_path):
    conn = open_db(tmp_path / "edge.db")
    jobs = ExportJobs(conn)
    job = jobs.begin(_req("ex-1", max_records=5), 1000)
    assert (job.part, job.after, job.sent) == (0, None, 0)
    jobs.progress(job, 3, (1_763_000_120, "s-demo-000003"), 15)
    assert jobs.begin(_req("ex-1"), 1001).part == 3          # the same request: the stored job
    conn.close()
    conn = open_db(tmp_path / "edge.db")
    jobs = ExportJobs(conn)
    [again] = jobs.pending(1002)
    assert again.request == _req("ex-1", max_records=5)
    assert (again.part, again.after, again.sent) == (3, (1_763_000_120, "s-demo-000003"), 15)
    jobs.finish("ex-1")
    assert jobs.pending(1003) == [] and jobs.get("ex-1") is None
    conn.close()


def test_bounded_and_old_or_damaged_jobs_dropped(tmp_path):
    conn = open_db(tmp_path / "edge.db")
    jobs = ExportJobs(conn, max_jobs=2, max_age_s=3600)
    assert jobs.begin(_req("a"), 1000) and jobs.begin(_req("b"), 5000)
    assert jobs.begin(_req("c"), 5000) is None                # full: refused, nothing stored
    conn.execute("UPDATE export_jobs SET after='[1,' WHERE request_id='b'")
    assert jobs.pending(5000) == []                          # a: older than an hour; b: damaged
    assert conn.execute("SELECT COUNT(*) FROM export_jobs").fetchone()[0] == 0
    assert jobs.begin(_req("c"), 5000) is not None
    conn.close()
