"""tracecause datagen stage: reasoning-trace datasets whose answers are fixed byte for byte.

In-process API (launch uses it; nothing heavy is imported here):
``datagen.plan.load_config`` / ``make_plan`` (validate, dataset id, folders),
``datagen.shard.ShardRunner(plan).run(k)``, ``datagen.merge.merge(plan)``,
``datagen.cli.main(argv)``. See ``datagen.cli`` for the command line.

Floor: a stage; imports only ``tracecause`` and ``configs``, never another stage or ``launch``
(tests/test_house_layers.py).
"""
