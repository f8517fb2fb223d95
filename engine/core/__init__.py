"""The pure core: values in, values out. Nothing here reads the clock, the database, the network
or a template; the workflow machine and ``now`` are passed in.

Modules: ``evidence`` (what an event carries), ``party`` (deciding an event), ``round`` (settling
the round: activate, fail, effective date), ``calendar`` (the one working-day calendar), ``chain``
(canonical entries and hashes), ``export`` (jsonl and csv), ``replay`` (rebuilding a round).
"""
