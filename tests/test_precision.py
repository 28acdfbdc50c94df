"""The measured precision choice (htr.train.precision): bf16 only where it is clearly faster, and
the timed step is a real training step."""

from __future__ import annotations

import pytest
import torch

from htr.model.module import HTRModule
from htr.train import precision


@pytest.mark.parametrize(
    ("fp32", "bf16", "expected"),
    [(100.0, 150.0, precision.BF16), (100.0, 111.0, precision.BF16), (100.0, 109.0, precision.FP32), (141.4, 84.9, precision.FP32)],
)
def test_bf16_is_chosen_only_when_clearly_faster(fp32: float, bf16: float, expected: str) -> None:
    assert precision.fastest({precision.FP32: fp32, precision.BF16: bf16}) == expected


def test_a_missing_measurement_is_named() -> None:
    with pytest.raises(ValueError, match="bf16-mixed"):
        precision.fastest({precision.FP32: 100.0})


@pytest.mark.parametrize("bf16", [False, True])
def test_the_timed_step_trains_the_network(bf16: bool) -> None:
    torch.manual_seed(0)
    module = HTRModule()
    before = [p.detach().clone() for p in module.parameters()]
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
    batch = {"image": torch.rand(2, 1, 32, 128), "text": ["ab", "c"]}
    rate = precision.step_rate(module, [batch], optimizer, bf16)
    assert rate > 0
    assert all(p.dtype == torch.float32 for p in module.parameters())  # autocast, not a bf16 copy of the weights
    assert sum(not torch.equal(b, p) for b, p in zip(before, module.parameters())) == len(before)


def test_rates_are_measured_for_both_precisions_and_the_command_prints_one(capsys: pytest.CaptureFixture[str]) -> None:
    rates = precision.measure_cpu_rates(steps=1, batch_size=2, warmup=0)
    assert set(rates) == {precision.FP32, precision.BF16} and min(rates.values()) > 0
    assert precision.main(["--steps", "1", "--batch_size", "2"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() in {precision.FP32, precision.BF16} and "samples/s" in err


def test_bad_settings_are_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        precision.main(["--steps", "0"])
    assert "steps (0)" in capsys.readouterr().err
