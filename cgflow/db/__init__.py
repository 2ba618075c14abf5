"""The job database: its embedded server, the document schemas and the store.

* :mod:`cgflow.db.server` starts, stops and inspects the embedded server (SecantusDB, an
  optional extra run as its own process);
* :mod:`cgflow.db.launcher_lock` enforces one FireWorks launcher at a time on it;
* :mod:`cgflow.db.documents` defines what is stored (pydantic documents);
* :mod:`cgflow.db.store` reads and writes them (the only module with collection names
  and queries of cgflow's own collections).

MongoDB (``docker-compose.yml``, ``launchpad_configs/my_launchpad_mongodb.yaml``) is the
production target and works the same way through a launchpad file.
"""
