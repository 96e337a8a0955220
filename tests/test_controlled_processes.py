"""Process workers under the baton: paused at sync points, interleaved by choice."""

from __future__ import annotations

import threading

from jostle._control import Controller, Strategy
from jostle._controlled_processes import ProxyResult, run_proxy
from jostle._handles import handle_for
from jostle._processes import ProcessJob, ProcessPool
from jostle._strategies import Preemptions, from_log

import proc_resources as pr


def run_two(pool: ProcessPool, strategy: Strategy, *, allow_kill: bool = False,
            counter_type: type[pr.FileCounter] = pr.SyncPointFile, line_points: bool = False
            ) -> tuple[list[ProxyResult], Controller, int]:
    """Two process workers take one ticket each from a file counter (by
    default an unlocked one with a sync point between its read and write)."""
    counter = counter_type()
    try:
        workers = pool.acquire(2)
        c = Controller(strategy)
        results = [ProxyResult(), ProxyResult()]
        threads = []
        for w, pw in enumerate(workers, start=1):
            pw.submit(ProcessJob(job_id=w, worker=w, phase="parallel",
                                 handle=handle_for(counter),
                                 steps=((w, "take", pr.take, ()),),
                                 pause_at_points=True, wait_for_go=True,
                                 line_points=line_points))
            assert pw.wait_ready(30)
            entity = c.add(f"worker {w} (process)")
            threads.append(threading.Thread(
                target=run_proxy, args=(c, entity, pw, results[w - 1]),
                kwargs={"stall_timeout": 30.0, "allow_kill": allow_kill}))
        for t in threads:
            t.start()
        c.start()
        assert c.wait(60)
        for t in threads:
            t.join(30)
        for pw, res in zip(workers, results, strict=True):
            if res.died:
                pool.discard(pw)
        pool.release([pw for pw in workers if pw.alive])
        with open(counter.path) as f:
            final = int(f.read())
        return results, c, final
    finally:
        counter.close()


def values(results: list[ProxyResult]) -> list[object]:
    return [r.outcome.value for res in results for r in res.records]  # type: ignore[union-attr]


def test_sequential_schedule_has_no_lost_update() -> None:
    """With no preemptions the two takes run one after the other."""
    with ProcessPool() as pool:
        results, _, final = run_two(pool, Preemptions())
        assert sorted(values(results)) == [1, 2]
        assert final == 2


def test_switch_at_the_sync_point_loses_an_update() -> None:
    """Switching to worker 2 while worker 1 sits at its read point loses one update."""
    with ProcessPool() as pool:
        found = None
        for step in range(1, 8):
            _, c, final = run_two(pool, Preemptions(switches=((step, 1),)))
            if final == 1:
                found = (step, from_log(c.log))
                break
        assert found is not None
        step, schedule = found
        for _ in range(20):  # exact replay
            again, _, final = run_two(pool, schedule)
            assert final == 1
            assert values(again) == [1, 1]


def test_kill_at_a_point_is_a_choice() -> None:
    """The strategy may kill a worker at a point; its op is then pending."""
    with ProcessPool() as pool:
        for step in range(1, 10):
            results, c, _ = run_two(pool, Preemptions(picks=((step, 1),)), allow_kill=True)
            dead = [r for r in results if r.died]
            if dead:
                break
        assert len(dead) == 1 and dead[0].killed_at == "file.read"
        (rec,) = dead[0].records
        assert rec.response is None
        assert any(d.kind == "pick" for d in c.log)


def test_os_lock_wait_lets_the_lock_holder_run() -> None:
    """A process blocked on flock held by another (paused) process is not a hang."""
    import jostle
    from jostle import ControlledScheduler, RandomWalk, Scenario, Step, WorkerPlan

    spec = jostle.spec(pr.FileCounter, jostle.operation(pr.take, kinds=("process",)),
                       model=pr.CounterModel)
    sc = Scenario(workers=(WorkerPlan("process", (Step("take"),)),) * 2)
    for seed in range(15):
        run = jostle.execute(spec, sc, scheduler=ControlledScheduler(RandomWalk(seed, p=0.5)))
        assert jostle.judge(spec, run).ok, seed


def test_a_taken_file_lock_is_announced_not_timed_out() -> None:
    """With line points, a process whose flock is taken says so: the log names
    the wait ("waiting for flock"), not the grace period's guess."""
    with ProcessPool() as pool:
        labels: list[str] = []
        for step in range(1, 12):  # preempt worker 1 somewhere inside take()
            results, c, final = run_two(pool, Preemptions(switches=((step, 1),)),
                                        counter_type=pr.FileCounter, line_points=True)
            assert sorted(values(results)) == [1, 2] and final == 2
            labels += [d.label for d in c.log]
        assert any("waiting for flock" in label for label in labels)
        assert not any("waiting outside jostle" in label for label in labels)


def test_line_points_find_an_unlocked_read_modify_write() -> None:
    """With line points, two processes racing a file without flock lose an update."""
    import jostle
    from jostle import ControlledScheduler, RandomWalk, Scenario, Step, WorkerPlan

    spec = jostle.spec(pr.UnlockedFile, jostle.operation(pr.take, kinds=("process",)),
                       model=pr.CounterModel)
    sc = Scenario(workers=(WorkerPlan("process", (Step("take"),)),) * 2)

    def fails(process_lines: bool) -> bool:
        return any(not jostle.judge(spec, jostle.execute(spec, sc, scheduler=ControlledScheduler(
            RandomWalk(seed, p=0.3), process_lines=process_lines))).ok for seed in range(40))

    assert fails(True)
    assert not fails(False)  # operation boundaries alone cannot see inside take()
