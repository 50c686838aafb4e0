"""The Trainer (meshcnn.train.trainer): mixed precision, gradient clipping and accumulation, callbacks,
early stopping, torch.compile, and exact resume with all of them; predict's targets and devices."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

import meshcnn.train.trainer as trainer_module
from meshcnn.models import SphericalResNet
from meshcnn.nn import MeshConv
from meshcnn.train import (
    Callback,
    EarlyStopping,
    ResumeSettingsError,
    Trainer,
    fit,
    load_checkpoint,
    predict,
    seed_everything,
)

QUIET = dict(progress=False, log=lambda s: None)


def _equal_states(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


# ------------------------------------------------------------------------------------ precision
def test_bf16_trains_in_bfloat16_with_finite_losses_close_to_fp32(tmp_path, problem):
    histories, dtypes = {}, []
    for precision in ("fp32", "bf16"):
        data, model, opt, sched = problem()
        model[2].register_forward_hook(lambda m, i, out, p=precision: dtypes.append((p, out.dtype)))
        histories[precision] = fit(
            model,
            data,
            optimizer=opt,
            scheduler=sched,
            loss_fn=nn.functional.cross_entropy,
            epochs=3,
            batch_size=5,
            run_dir=tmp_path / precision,
            precision=precision,
            **QUIET,
        )
        assert all(p.dtype == torch.float32 for p in model.parameters())  # the weights stay float32
    assert {d for p, d in dtypes if p == "bf16"} == {torch.bfloat16}  # autocast ran the layers in bfloat16
    assert {d for p, d in dtypes if p == "fp32"} == {torch.float32}
    fp32 = [h["train_loss"] for h in histories["fp32"]]
    bf16 = [h["train_loss"] for h in histories["bf16"]]
    assert all(torch.isfinite(torch.tensor(bf16)))
    assert bf16 != fp32  # a different arithmetic ...
    assert bf16 == pytest.approx(fp32, rel=0.05)  # ... giving nearly the same losses


def test_fp16_needs_cuda_and_unknown_precision_is_refused(tmp_path, problem):
    data, model, opt, _ = problem()
    with pytest.raises(ValueError, match="fp16.*CUDA.*bf16"):
        Trainer(optimizer=opt, loss_fn=nn.functional.cross_entropy, batch_size=4, run_dir=tmp_path, precision="fp16")
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, fp16"):
        Trainer(optimizer=opt, loss_fn=nn.functional.cross_entropy, batch_size=4, run_dir=tmp_path, precision="fp8")
    with pytest.raises(ValueError, match="positive"):
        Trainer(optimizer=opt, loss_fn=nn.functional.cross_entropy, batch_size=4, run_dir=tmp_path, accumulate=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 training needs CUDA")
def test_fp16_on_cuda_trains_with_a_scaler_saved_in_the_checkpoint(tmp_path, train_tiny):
    train_tiny(tmp_path, 2, device="cuda", precision="fp16")
    scaler = load_checkpoint(tmp_path)["trainer"]["scaler"]
    assert scaler is not None and scaler["scale"] > 0


def test_fp16_gradscaler_state_is_checkpointed_and_resumes_exactly(tmp_path, monkeypatch, train_tiny):
    """The fp16 path (autocast float16 and a GradScaler) on the CPU, which the trainer offers only on CUDA: the
    scaler's state (its scale after backoffs and growths) is in the checkpoint and restored on resume."""
    monkeypatch.setattr(trainer_module, "FP16_DEVICE_TYPES", ("cuda", "cpu"))
    straight = train_tiny(tmp_path / "a", 4, precision="fp16", grad_clip=1.0)
    train_tiny(tmp_path / "b", 2, precision="fp16", grad_clip=1.0)
    half = load_checkpoint(tmp_path / "b")["trainer"]["scaler"]
    resumed = train_tiny(tmp_path / "b", 4, resume=True, precision="fp16", grad_clip=1.0)
    assert _equal_states(straight, resumed)
    final = load_checkpoint(tmp_path / "b")["trainer"]["scaler"]
    assert final == load_checkpoint(tmp_path / "a")["trainer"]["scaler"]
    assert final != half  # the state moved on from the restored one


# ------------------------------------------------------------------------------------ clipping
def _grad_norms(optimizer: torch.optim.Optimizer) -> list[float]:
    """The total gradient 2-norm seen at each optimizer step (recorded by a step pre-hook)."""
    norms: list[float] = []

    def record(opt, args, kwargs):
        grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))

    optimizer.register_step_pre_hook(record)
    return norms


@pytest.mark.parametrize("clip", [None, 0.05])
def test_grad_clip_bounds_the_total_norm_at_every_step(tmp_path, problem, clip):
    data, model, opt, _ = problem()
    norms = _grad_norms(opt)
    fit(
        model,
        data,
        optimizer=opt,
        loss_fn=nn.functional.cross_entropy,
        epochs=2,
        batch_size=5,
        run_dir=tmp_path,
        grad_clip=clip,
        **QUIET,
    )
    assert len(norms) == 10  # 5 batches per epoch
    if clip is None:
        assert max(norms) > 0.05  # the bound below is not met by itself
    else:
        assert max(norms) <= clip * (1 + 1e-5)


# ---------------------------------------------------------------------------------- accumulation
def _linear_problem(n: int):
    """A float64 model without batch-dependent layers (a MeshConv and a linear map), its data and SGD."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(n, 2, 42, generator=g, dtype=torch.float64)
    y = torch.randn(n, 3, generator=g, dtype=torch.float64)
    seed_everything(0)
    model = nn.Sequential(MeshConv(2, 2, level=1), nn.Tanh(), nn.Flatten(), nn.Linear(84, 3)).double()
    return TensorDataset(x, y), model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


@pytest.mark.parametrize("n", [24, 22])  # 22: the last step of an epoch gets batches of 4, 4 and 2
def test_accumulating_k_batches_of_b_equals_one_batch_of_k_times_b(tmp_path, n):
    states, steps = {}, {}
    for name, batch, k in (("accumulated", 4, 3), ("large", 12, 1), ("plain", 4, 1)):
        data, model, opt = _linear_problem(n)
        steps[name] = _grad_norms(opt)
        fit(
            model,
            data,
            optimizer=opt,
            loss_fn=nn.functional.mse_loss,
            epochs=2,
            batch_size=batch,
            run_dir=tmp_path / name,
            accumulate=k,
            **QUIET,
        )
        states[name] = model.state_dict()
    assert len(steps["accumulated"]) == len(steps["large"]) == 2 * -(-n // 12)
    for key, value in states["large"].items():
        torch.testing.assert_close(states["accumulated"][key], value, rtol=1e-12, atol=1e-12)
    assert any(not torch.allclose(states["plain"][k], v) for k, v in states["large"].items())


# ------------------------------------------------------------------------------------ resume
@pytest.mark.parametrize("options", [dict(accumulate=2, grad_clip=0.5), dict(precision="bf16", accumulate=3)])
def test_resume_is_exact_with_accumulation_clipping_and_bf16(tmp_path, train_tiny, options):
    straight = train_tiny(tmp_path / "a", 4, **options)
    train_tiny(tmp_path / "b", 2, **options)
    resumed = train_tiny(tmp_path / "b", 4, resume=True, **options)
    assert _equal_states(straight, resumed)
    history = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert load_checkpoint(tmp_path / "b")["trainer"]["accumulate"] == options["accumulate"]


def test_resume_with_other_training_settings_is_refused(tmp_path, train_tiny):
    train_tiny(tmp_path, 1, accumulate=2)
    with pytest.raises(ResumeSettingsError, match="accumulate: the run has 2, now 1"):
        train_tiny(tmp_path, 2, resume=True)
    with pytest.raises(ResumeSettingsError, match="precision: the run has 'fp32', now 'bf16'"):
        train_tiny(tmp_path, 2, resume=True, accumulate=2, precision="bf16")


# ------------------------------------------------------------------------------ early stopping
def _scripted(scores: list[float], start: int = 0):
    """An ``evaluate`` returning ``scores[start]``, ``scores[start + 1]``, ... at successive epochs."""
    calls = {"n": start}

    def evaluate(model, dataset, device):
        calls["n"] += 1
        return {"score": scores[calls["n"] - 1]}

    return evaluate


SCORES = [1.0, 0.5, 0.6, 0.7, 0.4, 0.3, 0.2, 0.1]  # best at epoch 2; patience 2 stops after epoch 4


def test_early_stopping_stops_when_the_metric_stops_improving(tmp_path, problem):
    data, model, opt, _ = problem()
    stopper = EarlyStopping("score", mode="min", patience=2)
    history = fit(
        model,
        data,
        optimizer=opt,
        loss_fn=nn.functional.cross_entropy,
        epochs=8,
        batch_size=8,
        run_dir=tmp_path,
        val_set=data,
        evaluate=_scripted(SCORES),
        early_stopping=stopper,
        **QUIET,
    )
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert (stopper.best, stopper.wait, stopper.stopped_epoch) == (0.5, 2, 4)
    assert load_checkpoint(tmp_path)["trainer"]["early_stopping"]["stopped_epoch"] == 4
    # mode max on the same scores: 1.0 at epoch 1 is never beaten
    data, model, opt, _ = problem()
    history = fit(
        model,
        data,
        optimizer=opt,
        loss_fn=nn.functional.cross_entropy,
        epochs=8,
        batch_size=8,
        run_dir=tmp_path / "max",
        val_set=data,
        evaluate=_scripted(SCORES),
        early_stopping=EarlyStopping("score", mode="max", patience=2),
        **QUIET,
    )
    assert len(history) == 3


def test_early_stopping_state_survives_resume(tmp_path, problem):
    def run(run_dir, epochs, start, resume, messages=None):
        data, model, opt, sched = problem()
        stopper = EarlyStopping("score", mode="min", patience=2)
        history = fit(
            model,
            data,
            optimizer=opt,
            scheduler=sched,
            loss_fn=nn.functional.cross_entropy,
            epochs=epochs,
            batch_size=8,
            run_dir=run_dir,
            val_set=data,
            evaluate=_scripted(SCORES, start),
            early_stopping=stopper,
            resume=resume,
            progress=False,
            log=(messages.append if messages is not None else lambda s: None),
        )
        return model, history, stopper

    straight, _, _ = run(tmp_path / "a", 8, 0, False)
    run(tmp_path / "b", 3, 0, False)  # epoch 3 did not improve: wait is 1
    assert load_checkpoint(tmp_path / "b")["trainer"]["early_stopping"]["wait"] == 1
    resumed, history, stopper = run(tmp_path / "b", 8, 3, True)  # a fresh counter would go on to epoch 8
    assert [h["epoch"] for h in history] == [1, 2, 3, 4] and stopper.stopped_epoch == 4
    assert _equal_states(straight, resumed)
    messages: list[str] = []
    _, history, _ = run(tmp_path / "b", 8, 4, True, messages)  # a stopped run stays stopped
    assert len(history) == 4 and any("stopped early after epoch 4" in m for m in messages)
    with pytest.raises(ResumeSettingsError, match="early stopping"):
        data, model, opt, _ = problem()
        fit(
            model,
            data,
            optimizer=opt,
            loss_fn=nn.functional.cross_entropy,
            epochs=8,
            batch_size=8,
            run_dir=tmp_path / "b",
            val_set=data,
            evaluate=_scripted(SCORES, 4),
            resume=True,
            early_stopping=EarlyStopping("score", mode="max"),
            **QUIET,
        )


def test_early_stopping_names_a_missing_metric(tmp_path, problem):
    data, model, opt, _ = problem()
    with pytest.raises(ValueError, match="'val_iou'.*'train_loss'"):
        fit(
            model,
            data,
            optimizer=opt,
            loss_fn=nn.functional.cross_entropy,
            epochs=2,
            batch_size=8,
            run_dir=tmp_path,
            early_stopping=EarlyStopping("val_iou", mode="max"),
            **QUIET,
        )
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping("x", mode="best")


# ------------------------------------------------------------------------------------ callbacks
class Recorder(Callback):
    def __init__(self, stop_at: int | None = None):
        self.calls: list[tuple] = []
        self.stop_at = stop_at

    def on_validation(self, trainer, metrics):
        self.calls.append(("validation", trainer.epoch, dict(metrics)))

    def on_epoch_end(self, trainer, record):
        self.calls.append(("epoch_end", trainer.epoch, dict(record)))
        record["seen_by_callback"] = True
        if record["epoch"] == self.stop_at:
            trainer.should_stop = True


def test_callbacks_get_the_metrics_and_records_in_order(tmp_path, problem):
    data, model, opt, _ = problem()
    recorder = Recorder()

    class OnlyEnd:  # any object with either method
        ends = []

        def on_epoch_end(self, trainer, record):
            self.ends.append(record["epoch"])

    history = fit(
        model,
        data,
        optimizer=opt,
        loss_fn=nn.functional.cross_entropy,
        epochs=3,
        batch_size=8,
        run_dir=tmp_path,
        val_set=data,
        evaluate=_scripted([0.3, 0.2, 0.1]),
        callbacks=[recorder, OnlyEnd()],
        **QUIET,
    )
    assert [c[0] for c in recorder.calls] == ["validation", "epoch_end"] * 3
    assert [c[2] for c in recorder.calls[0::2]] == [{"score": 0.3}, {"score": 0.2}, {"score": 0.1}]
    assert [c[1] for c in recorder.calls[1::2]] == [1, 2, 3]  # epochs completed when the epoch ends
    for (_, _, record), saved in zip(recorder.calls[1::2], history):
        assert {k: v for k, v in saved.items() if k != "seen_by_callback"} == record
    assert OnlyEnd.ends == [1, 2, 3]
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert all(h["seen_by_callback"] for h in saved)  # what a hook adds to the record is kept


def test_a_callback_can_stop_training(tmp_path, problem):
    data, model, opt, _ = problem()
    history = fit(
        model,
        data,
        optimizer=opt,
        loss_fn=nn.functional.cross_entropy,
        epochs=5,
        batch_size=8,
        run_dir=tmp_path,
        callbacks=[Recorder(stop_at=2)],
        **QUIET,
    )
    assert len(history) == 2 and load_checkpoint(tmp_path)["epoch"] == 2


# ------------------------------------------------------------------------------------ compile
def _compile_works() -> bool:
    try:
        return bool(torch.compile(lambda t: t * 2)(torch.ones(2)).sum() == 4)
    except Exception:
        return False


@pytest.mark.slow
def test_compiled_training_matches_eager(tmp_path):
    if not _compile_works():
        pytest.skip("torch.compile is unavailable here")
    g = torch.Generator().manual_seed(123)
    x = torch.randn(16, 2, 42, generator=g)
    y = (x[:, 0].mean(-1) > 0).long()
    models = {}
    for compiled in (False, True):
        seed_everything(0)
        model = nn.Sequential(SphericalResNet(2, 8, level=1, width=4, depth=1), nn.Linear(8, 2))  # no dropout
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        fit(
            model,
            TensorDataset(x, y),
            optimizer=opt,
            loss_fn=nn.functional.cross_entropy,
            epochs=2,
            batch_size=8,
            run_dir=tmp_path / str(compiled),
            compile=compiled,
            **QUIET,
        )
        models[compiled] = model
    assert not any(k.startswith("_orig_mod") for k in load_checkpoint(tmp_path / "True")["model"])
    for (name, p), q in zip(models[False].state_dict().items(), models[True].state_dict().values()):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5, msg=name)


# ------------------------------------------------------------------------------------ predict
class Nested(Dataset):
    """Inputs and targets as nested structures, as fit accepts them."""

    def __len__(self) -> int:
        return 5

    def __getitem__(self, i):
        x = torch.full((3,), float(i))
        return {"a": x, "b": (x * 2,)}, (torch.tensor(i), {"mask": torch.ones(2) * i})


class TwoHeads(nn.Module):
    def forward(self, inputs):
        return inputs["a"].sum(1), [inputs["b"][0]]


def test_predict_takes_the_targets_fit_takes(tmp_path):
    outputs, targets = predict(TwoHeads(), Nested(), batch_size=2)
    torch.testing.assert_close(outputs[0], torch.arange(5.0) * 3)
    torch.testing.assert_close(outputs[1][0], torch.arange(5.0)[:, None].expand(5, 3) * 2)
    assert torch.equal(targets[0], torch.arange(5))
    torch.testing.assert_close(targets[1]["mask"], torch.arange(5.0)[:, None].expand(5, 2))


def test_predict_resolves_the_device_as_fit_does(monkeypatch, problem):
    seen = []
    monkeypatch.setattr("meshcnn.train.loop.resolve_device", lambda d: seen.append(d) or torch.device("cpu"))
    data, model, _, _ = problem()
    outputs, targets = predict(model, data, device="cuda")
    assert seen == ["cuda"] and outputs.shape == (24, 2) and torch.equal(targets, data.tensors[1])
