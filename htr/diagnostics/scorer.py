"""The scorer seam: every diagnostic asks a :class:`TextScorer` for log p(text | image).

Like Captum's attribution methods, which take a forward function rather than a model class, the
diagnostics (shift sweep, relevance, edits, deletion curves, shortcut scores, the explorer) see a
recognizer only through :meth:`TextScorer.score`: uint8 gray canvases (B, 32, 128) in 0..255 and
their texts in, log p(text | canvas) out, plus the best reading and, where the model has frames,
its per-frame log-probabilities. Scorers here:

* :class:`CTCScorer`: any CTC recognizer, told its layout (``"BTC"`` or ``"TBC"``), where its blank
  is, whether it returns log-probs or logits, its channels and its input normalisation; scored
  with the project's CTC text score (:func:`htr.text.text_log_score`) and best-path decoding;
* :class:`CRNNScorer`: the project's CRNN in its own layout, which also offers the exact
  incremental relevance engine (:mod:`htr.diagnostics.incremental`);
* :class:`Seq2SeqScorer`: attention (encoder-decoder) recognizers: the teacher-forced sum of
  token log-probs (end token included) and a greedy reading.

Every scorer checks the model's output on its first batch (shape, class count, log-probs that
normalise) and says in one line what to set where it does not fit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from htr.data import preprocess
from htr.diagnostics.incremental import IncrementalScoring, supports_incremental
from htr.errors import HTRError
from htr.text import BLANK, Charset, CharsetError, best_path_decode, text_log_score

Layout = Literal["BTC", "TBC"]
Outputs = Literal["log_probs", "logits"]
InputTransform = Callable[[torch.Tensor], torch.Tensor]

# |logsumexp over classes| above this: the outputs are not log-probabilities. float32 log_softmax
# is off by ~1e-6; a model that skips log_softmax is off by ~log(classes), i.e. several nats.
NORMALISATION_TOLERANCE = 1e-3


class ScorerError(HTRError, ValueError):
    """A model whose outputs do not fit its scorer's settings; the message says what to set."""


@dataclass
class Scored:
    """What a scorer says about a batch of canvases, one row each."""

    log_scores: np.ndarray  # (B,) float64 log p(text | canvas); -inf where the text is impossible
    readings: list[str]  # the model's reading of each canvas (empty unless asked for)
    log_probs: torch.Tensor | None = None  # (B, T, C) per-frame log-probs, blank = class 0, chars in charset order; None if not asked or no frames


@runtime_checkable
class TextScorer(Protocol):
    """canvases + texts -> log p(text | image) (+ readings, + per-frame log-probs where there are frames)."""

    charset: Charset

    def score(
        self,
        canvases: np.ndarray | Sequence[np.ndarray],
        texts: str | Sequence[str],
        *,
        decode: bool = True,
        frames: bool = False,
        batch_size: int | None = None,
    ) -> Scored:
        """Score ``texts`` (one for all canvases, or one per canvas) on gray canvases (B, H, W) in 0..255."""
        ...


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter or buffer (CPU for a parameter-free model)."""
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode under ``torch.inference_mode`` and restore its mode afterwards.

    Diagnostics may run from a training callback; BatchNorm must use its running statistics.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield model
    finally:
        model.train(was_training)


def check_text(text: str, charset: Charset) -> None:
    """Raise ``CharsetError`` (a ``ValueError``) naming the characters of ``text`` the charset lacks."""
    bad = charset.unknown(text)
    if bad:
        raise CharsetError(f"text {text!r} has characters outside the model's charset: {bad!r}")


def _batch(canvases: np.ndarray | Sequence[np.ndarray], texts: str | Sequence[str], charset: Charset) -> tuple[np.ndarray, list[str]]:
    """Canvases as (B, H, W) (dtype kept: relevance passes float gray levels) and one text per canvas, checked."""
    canvases = np.asarray(canvases)
    if canvases.ndim == 2:
        canvases = canvases[None]
    n = len(canvases)
    texts = [texts] * n if isinstance(texts, str) else list(texts)
    if len(texts) != n:
        raise ScorerError(f"{len(texts)} texts for {n} canvases")
    for t in set(texts):
        check_text(t, charset)
    return canvases, texts


def _shape(out: Any) -> str:
    return f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else f"a {type(out).__name__}"


class _ModelScorer:
    """What CTC and seq2seq scorers share: canvases -> model input, batching, first-batch checks."""

    def __init__(
        self,
        model: nn.Module,
        charset: Charset | str,
        num_classes: int,
        layout: Layout,
        outputs: Outputs,
        normalize: InputTransform | None,
        channels: int,
        batch_size: int,
    ) -> None:
        if layout not in ("BTC", "TBC"):
            raise ScorerError(f"layout must be 'BTC' (batch, time, classes) or 'TBC', got {layout!r}")
        if outputs not in ("log_probs", "logits"):
            raise ScorerError(f"outputs must be 'log_probs' or 'logits', got {outputs!r}")
        if channels not in (1, 3):
            raise ScorerError(f"channels must be 1 (gray) or 3 (gray copied to RGB), got {channels!r}")
        self.model = model
        self.charset = charset if isinstance(charset, Charset) else Charset(charset)
        self.num_classes = num_classes
        self.layout, self.outputs, self.normalize, self.channels, self.batch_size = layout, outputs, normalize, channels, batch_size
        self._checked = False

    def prepare(self, canvases: np.ndarray) -> torch.Tensor:
        """The model input of gray canvases: the project's ``normalize`` (g / 255, a channel axis),
        copied to 3 channels if asked, then the model's own input transform (e.g. mean/std)."""
        x = preprocess.normalize(canvases)
        if self.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        if self.normalize is not None:
            x = self.normalize(x)
        return x.to(model_device(self.model))

    def _run(self, *args: torch.Tensor) -> Any:
        """The model's forward; on the first batch a failure says which input it got and what to set."""
        if self._checked:
            return self.model(*args)
        try:
            return self.model(*args)
        except torch.OutOfMemoryError:
            raise
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ScorerError(
                f"the model failed on input {tuple(args[0].shape)} ({first}): set channels=3 for an RGB model, "
                "normalize= for its own input scaling or size"
            ) from err

    def _check(self, out: Any, batch: int, length: int | None = None) -> None:
        """First batch: a 3-axis tensor with the batch where ``layout`` says, the expected classes, and
        (``outputs="log_probs"``) rows that normalise. Raises :class:`ScorerError` with what to set."""
        if self._checked:
            return
        what = "(batch, time, classes)" if self.layout == "BTC" else "(time, batch, classes)"
        if not isinstance(out, torch.Tensor) or out.dim() != 3:
            raise ScorerError(f"the model returned {_shape(out)}; the scorer needs one 3-axis tensor {what}: wrap the model so that it returns that")
        axis = 0 if self.layout == "BTC" else 1
        if out.shape[axis] != batch:
            if out.shape[1 - axis] == batch:
                raise ScorerError(f"model output {_shape(out)} for a batch of {batch}: the batch is axis {1 - axis}, set layout={'BTC' if axis == 1 else 'TBC'!r}")
            raise ScorerError(f"model output {_shape(out)} for a batch of {batch}: no batch axis where layout={self.layout!r} {what} puts it")
        if length is not None and out.shape[1 - axis] != length:
            raise ScorerError(f"model output {_shape(out)} for {length} input tokens: the decoder must give one row per input token (teacher forcing)")
        if out.shape[-1] != self.num_classes:
            raise ScorerError(
                f"model output has {out.shape[-1]} classes, the scorer expects {self.num_classes} ({self._classes_text()}): "
                "pass the model's own characters, in class order, as charset"
            )
        if torch.isnan(out).any():
            raise ScorerError("the model's output holds NaN on the first batch")
        if self.outputs == "log_probs":
            lse = out.float().logsumexp(-1)
            if (lse.abs() > NORMALISATION_TOLERANCE).any():
                raise ScorerError(
                    f"the model's outputs are not log-probabilities (logsumexp over classes {float(lse.min()):.3g}..{float(lse.max()):.3g}, not 0): "
                    "set outputs='logits' if the model ends without log_softmax"
                )
        # A batch as long as the other axis cannot tell the layouts apart: check again on the next batch.
        self._checked = out.shape[0] != out.shape[1]

    def _classes_text(self) -> str:
        raise NotImplementedError

    def score(self, canvases: np.ndarray | Sequence[np.ndarray], texts: str | Sequence[str], *, decode: bool = True, frames: bool = False, batch_size: int | None = None) -> Scored:
        """:meth:`TextScorer.score`, in batches of ``batch_size`` (default: the scorer's) with the model in
        eval mode; each subclass scores one batch (:meth:`_score_batch`)."""
        canvases, texts = _batch(canvases, texts, self.charset)
        step = batch_size or self.batch_size
        with eval_mode(self.model):
            parts = [self._score_batch(self.prepare(canvases[i : i + step]), texts[i : i + step], decode, frames) for i in range(0, len(canvases), step)]
        kept = [p.log_probs for p in parts if p.log_probs is not None]
        return Scored(
            np.concatenate([p.log_scores for p in parts]) if parts else np.zeros(0),
            [r for p in parts for r in p.readings],
            torch.cat(kept) if kept else None,
        )

    def _score_batch(self, x: torch.Tensor, texts: list[str], decode: bool, frames: bool) -> Scored:
        """One batch of model input ``x`` (at most ``batch_size`` rows) and its texts."""
        raise NotImplementedError


class CTCScorer(_ModelScorer):
    """A CTC recognizer in any common layout, scored by the project's CTC text score and best path.

    ``blank``: the blank's class index (negative counts from the end: -1 = the last class); the
    characters of ``charset`` take the other classes in order. ``layout``: ``"BTC"`` (batch, time,
    classes) or ``"TBC"``. ``outputs``: ``"log_probs"`` (checked to normalise on the first batch) or
    ``"logits"`` (log_softmax applied here). ``channels``: 1, or 3 for a model that takes the gray
    canvas as RGB. ``normalize``: the model's own input transform, applied to the (B, channels, 32,
    128) tensor in 0..1 made by :func:`htr.data.preprocess.normalize` (e.g. mean/std, a resize).
    """

    def __init__(
        self,
        model: nn.Module,
        charset: Charset | str,
        *,
        blank: int = BLANK,
        layout: Layout = "BTC",
        outputs: Outputs = "log_probs",
        normalize: InputTransform | None = None,
        channels: int = 1,
        batch_size: int = 256,
    ) -> None:
        chars = charset if isinstance(charset, Charset) else Charset(charset)
        super().__init__(model, chars, chars.num_classes, layout, outputs, normalize, channels, batch_size)
        if not -self.num_classes <= blank < self.num_classes:
            raise ScorerError(f"blank must be a class index in {-self.num_classes}..{self.num_classes - 1}, got {blank}")
        self.blank = blank % self.num_classes
        # The project's layout has the blank at 0: move it there, characters after it in order.
        self._order = None if self.blank == BLANK else torch.tensor([self.blank, *[i for i in range(self.num_classes) if i != self.blank]])

    def _classes_text(self) -> str:
        return f"{len(self.charset)} characters + 1 blank"

    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) log-probs in the project's layout (blank 0, characters in charset order) of model input ``x``."""
        out = self._run(x)
        self._check(out, len(x))
        if self.layout == "TBC":
            out = out.transpose(0, 1)
        if self.outputs == "logits":
            out = out.float().log_softmax(-1)
        if self._order is not None:
            out = out[..., self._order.to(out.device)]
        return out

    def _score_batch(self, x: torch.Tensor, texts: list[str], decode: bool, frames: bool) -> Scored:
        """CTC log-score of ``texts`` and best-path reading of each input, with the frames if asked."""
        lp = self.log_probs(x)
        scores = text_log_score(lp, texts, self.charset).double().cpu().numpy()
        return Scored(scores, best_path_decode(lp, self.charset) if decode else [], lp.detach().cpu() if frames else None)


class CRNNScorer(CTCScorer):
    """The project's CRNN (:class:`htr.model.crnn.CRNN`, or any model in its layout with a ``cnn`` of
    supported layers and a ``head``): its default scorer, with the incremental relevance engine."""

    def __init__(self, model: nn.Module, charset: Charset | str, batch_size: int = 256) -> None:
        super().__init__(model, charset, batch_size=batch_size)

    @classmethod
    def of(cls, module: Any) -> CRNNScorer:
        """The scorer of a loaded :class:`htr.model.module.HTRModule` (its model and charset)."""
        return cls(module.model, module.charset)

    @contextmanager
    def incremental(self, canvas: np.ndarray, text: str, batch_size: int) -> Iterator[Any]:
        """An :class:`htr.diagnostics.incremental.IncrementalScoring` of ``text`` on the float gray
        ``canvas`` (CNN run once), or None where the model's CNN is not supported (naive path)."""
        if not supports_incremental(self.model):
            yield None
            return
        with eval_mode(self.model):
            x = preprocess.normalize(canvas).unsqueeze(0).to(model_device(self.model))
            yield IncrementalScoring(self.model, self.charset, x, text, batch_size)


@runtime_checkable
class SupportsIncremental(Protocol):
    """A scorer that can score local perturbations of one canvas faster than one forward each."""

    def incremental(self, canvas: np.ndarray, text: str, batch_size: int) -> Any:
        """A context manager giving an engine with ``clean_log_score``, ``add`` and ``flush``, or None."""
        ...


class Seq2SeqScorer(_ModelScorer):
    """An attention (encoder-decoder) recognizer: ``model(images, tokens)`` -> next-token scores.

    The model takes the images and the decoder's input tokens (B, L) (``layout="TBC"``: (L, B)) and
    returns, for each input position, scores (B, L, V) (or (L, B, V)) of the token that follows.
    log p(text | image) = sum over the text's tokens and the end token of log p(token | image,
    tokens before), teacher-forced in one call: ``[sos, c1 .. cn]`` in, ``[c1 .. cn, eos]`` scored.
    The reading is greedy: the most likely next token fed back until ``eos`` (or ``max_length``).
    Token ids: ``sos``, ``eos`` and ``specials`` (e.g. padding) are special; the characters of
    ``charset`` take the other ids in order. ``outputs``, ``normalize``, ``channels``: as
    :class:`CTCScorer`. The texts of one batch are scored in groups of equal length, so a decoder
    never sees padding.
    """

    def __init__(
        self,
        model: nn.Module,
        charset: Charset | str,
        *,
        sos: int,
        eos: int,
        specials: Sequence[int] = (),
        layout: Layout = "BTC",
        outputs: Outputs = "logits",
        normalize: InputTransform | None = None,
        channels: int = 1,
        max_length: int = 32,
        batch_size: int = 256,
    ) -> None:
        chars = charset if isinstance(charset, Charset) else Charset(charset)
        special = sorted({sos, eos, *specials})
        vocab = len(chars) + len(special)
        super().__init__(model, chars, vocab, layout, outputs, normalize, channels, batch_size)
        if special[0] < 0 or special[-1] >= vocab:
            raise ScorerError(f"special token ids must be in 0..{vocab - 1} (a vocabulary of {len(chars)} characters + {len(special)} special tokens), got {special}")
        self.sos, self.eos, self.specials = sos, eos, frozenset(special)
        self.max_length = max_length
        self.token_ids = [i for i in range(vocab) if i not in self.specials]  # character k -> token self.token_ids[k]
        self._char_of = {t: c for t, c in zip(self.token_ids, chars.chars)}

    def _classes_text(self) -> str:
        return f"{len(self.charset)} characters + {len(self.specials)} special tokens"

    def encode(self, text: str) -> list[int]:
        """The token ids of ``text``'s characters (no sos/eos)."""
        return [self.token_ids[i - 1] for i in self.charset.encode(text)]

    def token_log_probs(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L, V) log p(next token) for decoder input ``tokens`` (B, L) of model input ``x``."""
        out = self._run(x, tokens if self.layout == "BTC" else tokens.transpose(0, 1))
        self._check(out, len(x), tokens.shape[1])
        if self.layout == "TBC":
            out = out.transpose(0, 1)
        return out.float().log_softmax(-1) if self.outputs == "logits" else out.float()

    def _teacher_forced(self, x: torch.Tensor, texts: Sequence[str]) -> np.ndarray:
        """Sum of the log-probs of each text's tokens and the end token, texts of one length."""
        ids = torch.tensor([self.encode(t) for t in texts], dtype=torch.long).view(len(texts), len(texts[0]))
        start = torch.full((len(texts), 1), self.sos, dtype=torch.long)
        end = torch.full((len(texts), 1), self.eos, dtype=torch.long)
        lp = self.token_log_probs(x, torch.cat([start, ids], 1).to(x.device))
        target = torch.cat([ids, end], 1).to(lp.device)
        return lp.gather(-1, target[..., None])[..., 0].double().sum(1).cpu().numpy()

    def _greedy(self, x: torch.Tensor) -> list[str]:
        """Greedy decoding: feed back the most likely token until an end (or special) token."""
        tokens = torch.full((len(x), 1), self.sos, dtype=torch.long, device=x.device)
        done = np.zeros(len(x), dtype=bool)
        out: list[list[int]] = [[] for _ in range(len(x))]
        for _ in range(self.max_length + 1):
            nxt = self.token_log_probs(x, tokens)[:, -1].argmax(-1)
            for b, t in enumerate(nxt.tolist()):
                if done[b]:
                    continue
                if t in self.specials:
                    done[b] = True
                else:
                    out[b].append(t)
            if done.all():
                break
            tokens = torch.cat([tokens, nxt[:, None]], 1)
        return ["".join(self._char_of[t] for t in row) for row in out]

    def _score_batch(self, x: torch.Tensor, texts: list[str], decode: bool, frames: bool) -> Scored:
        """Teacher-forced log-score of ``texts`` and greedy reading of each input (no frames: ``log_probs`` None)."""
        scores = np.zeros(len(x), dtype=np.float64)
        for n in sorted({len(t) for t in texts}):
            idx = [k for k, t in enumerate(texts) if len(t) == n]
            scores[idx] = self._teacher_forced(x[idx], [texts[k] for k in idx])
        return Scored(scores, self._greedy(x) if decode else [], None)
