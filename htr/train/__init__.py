"""The training layer: one run from configs to ``runs/<name>/``.

- :mod:`~htr.train.cli`: the LightningCLI behind ``train.py`` (configs -> fit -> test -> metrics.json)
- :mod:`~htr.train.callbacks`: the diagnostics during training and the training history
- :mod:`~htr.train.wandb_run`: one W&B run per training, continued across resumed legs
- :mod:`~htr.train.wandb_offline`: an offline W&B run's history read back (where a resumed leg continues)

It builds on the library (``htr.data``, ``htr.model``, ``htr.diagnostics``); the experiment layer
reaches it only through train.py's command line.
"""
