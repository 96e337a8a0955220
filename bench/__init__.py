"""jostle's benchmark: finding power and speed, side by side with other tools.

Run it as ``python -m bench SUBCOMMAND``; ``python -m bench --help`` lists the
subcommands.  The command-line and JSON interfaces are the ones issue 4 fixes
(other checks consume them), so they change only together with that issue.

Modules, one concept each:

* ``_measure``: the record one measurement produces, skipped rows, and seeds.
* ``_stress``: the ``jostle-stress`` and ``jostle-controlled`` tools
  (``jostle.concurrent_test``).
* ``_judge``: how a run of a non-jostle tool is judged (shared by the next three).
* ``_naive``: the ``naive`` tool (what users write today without jostle).
* ``_peers``, ``_frontrun``, ``_detangle``: the peer tools' adapters.
* ``_tools``: the tools, the kinds each cannot express, their set-up hooks.
* ``_isolate``: one measurement in a fresh subprocess with a hard time limit.
* ``_findings``: the ``findings`` subcommand: cases x tools x variants.
* ``_throughput``, ``_workloads``: the ``throughput`` subcommand.
* ``_checker``, ``_histories``: the ``checker`` subcommand.
* ``_scaling``, ``_scaling_plugin``: the ``scaling`` subcommand.
* ``_report``, ``_markdown``, ``_plots``: ``report``, which writes
  ``docs/benchmark.md``.
* ``_table``: the text tables printed on stdout.
"""
