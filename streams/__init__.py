"""tunestream's streaming side: Kafka topics and Faust agents wired to pure logic.

Reading order (each room imports only the rooms below it; ``make test``
checks it with import-linter, see ``pyproject.toml``):

* ``tools``      the ``tunestream`` CLI, demo, simulator, produce and tail
* ``worker``     the Faust app and worker process: wiring, no decisions
* ``api``        the HTTP surface
* ``ops``        metrics, health, observer, logs, broker watch, fatal stop
* ``kafka``      topics, producer, replicated readers, broker, Faust fixes
* ``pipeline``   one message's effects, planned before anything is applied
* ``state``      per-user and per-track state, its encoding and bounds
* ``contracts``  event and recommendation records, schemas, the clock
* ``settings``   the one frozen settings object

The pure logic they wire lives in ``features`` and ``online_models``, which
never import ``streams``. Every tunestream exception derives from
``features.errors.TunestreamError`` (defined in the lowest layer, so all can).
"""
