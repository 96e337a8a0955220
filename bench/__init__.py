"""jostle's benchmark: finding power and speed, side by side with other tools.

Run it as ``python -m bench SUBCOMMAND``; ``python -m bench --help`` lists the
subcommands.  The command-line and JSON interfaces are the ones issue 4 fixes
(other checks consume them), so they change only together with that issue.

Modules, one concept each:

* ``_measure``: the record one measurement produces, and seeds.
* ``_stress``: the ``jostle-stress`` tool (``jostle.concurrent_test``).
* ``_naive``: the ``naive`` tool (what users write today without jostle).
* ``_isolate``: one measurement in a fresh subprocess with a hard time limit.
* ``_findings``: the ``findings`` subcommand: cases x tools x variants.
* ``_table``: the text tables printed on stdout.
"""
