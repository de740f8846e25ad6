"""The cluster the tests of this package share: started once, stopped (and checked) at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bench.server import free_port

from tests.cluster.deployment import (
    ACCOUNTS,
    API_NODES,
    SERVER_ERROR_RE,
    WORKER_NODES,
    Deployment,
    cluster_settings,
    spawn_api_node,
    spawn_worker_node,
)
from tests.postgres import fresh_database, throwaway_cluster
from tests.processes import processes
from tests.s3 import s3_storage


@pytest.fixture(scope="package")
def deployment(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("cluster")
    with throwaway_cluster() as postgres:
        storage = s3_storage(s3_endpoint)
        settings = cluster_settings(fresh_database(postgres.url), storage)
        with processes(root, **settings) as procs:
            procs.cli("migrate")
            ports = [free_port() for _ in API_NODES]
            apis = [spawn_api_node(procs, name, port) for name, port in zip(API_NODES, ports, strict=True)]
            workers = [spawn_worker_node(procs, name) for name in WORKER_NODES]
            # While the nodes load their models.
            accounts = {
                name: procs.new_account(name, tier, credits) for name, (tier, credits) in ACCOUNTS.items()
            }
            for api, port in zip(apis, ports, strict=True):
                procs.ready(api, port)
            for worker in workers:
                procs.running(worker)
            bases = [f"http://127.0.0.1:{port}" for port in ports]
            yield Deployment(procs, postgres, storage, bases, workers, accounts)

            # Every node still running stops cleanly on SIGTERM. No API node ever answered with a
            # server error other than 503, and no worker logged a traceback (not even in the outage).
            for process in [*apis, *workers]:
                if process.poll() is None:
                    procs.terminate(process)
            for api in apis:
                log = procs.log_of(api)
                assert SERVER_ERROR_RE.search(log) is None, log
                assert "unhandled error" not in log, log
            for process, command in zip(procs.started, procs.commands, strict=True):
                if command == ["worker"]:
                    assert "Traceback" not in procs.log_of(process), procs.log_of(process)
