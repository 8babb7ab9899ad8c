"""The pieces of ``scripts/bench.py``, one module per benchmark family; ``bench.py`` is the
command and documents what each mode measures.

- :mod:`benchlib.grid`: the speed grid (the default mode) and its comparisons;
- :mod:`benchlib.vs_neurolib`: ``--vs-neurolib``;
- :mod:`benchlib.epochs`: ``--epochs``, training epochs of ``scripts/train.py`` jobs;
- :mod:`benchlib.scale`: ``--scale``, an epoch on several processes and subject batches;
- :mod:`benchlib.phases`: ``--phases``, the profiler breakdown;
- :mod:`benchlib.kernels`: ``--kernels``, the lagged-sum operators alone;
- :mod:`benchlib.memory`: ``--long`` and ``--memory``;
- :mod:`benchlib.builders`: the benches' networks and one timed run of them;
- :mod:`benchlib.launch`: each configuration in a fresh interpreter, with a memory watchdog;
- :mod:`benchlib.report`: the printed report and its tables;
- :mod:`benchlib.measure`: resident memory, medians, the tree and the machine;
- :mod:`benchlib.cli`: the command line.

Only the standard library is imported at the top of these modules (torch and brainfit inside the
functions that run a configuration), so that neurolib's side runs in an interpreter without
either.
"""
