"""Interactive explorer: paint on a word, move it, and watch several checkpoints read it.

``python -m htr.explore CKPT [CKPT ...]`` (or ``python explore.py``) serves one static page on
127.0.0.1 from the standard library's HTTP server. The model work lives in
:mod:`htr.explore.session` (testable without a browser), the JSON API in
:mod:`htr.explore.server`. Every number the page shows comes from the diagnostics' own
functions (edits, CTC score, best-path decoding, relevance, shift).
"""
