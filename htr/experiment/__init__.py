"""The experiment layer: what the entry points evaluate.py and study.py run.

- :mod:`~htr.experiment.evaluate`: checkpoints -> metrics per split + diagnostics -> comparison report
- :mod:`~htr.experiment.compare`: the comparison report's tables and page
- :mod:`~htr.experiment.study`: arms x seeds -> train (train.py), evaluate -> per-run results
- :mod:`~htr.experiment.study_report`: per-run results -> mean ± sd per arm -> report
- :mod:`~htr.experiment.figures`: the figures, units and tables both reports draw

It builds on the library (``htr.data``, ``htr.model``, ``htr.diagnostics``) and on training
(``htr.train.cli``) only through train.py's command line; nothing below imports it.
"""
