"""Neural network from the 19 force-field parameters to the converged CG potential.

:class:`StructureModel` predicts the coefficients of a
:class:`~cgflow.ml.representation.PotentialRepresentation` with a small multilayer
perceptron (torch, CPU, float32) and decodes them into potentials that are smooth, zero at
the cut-off and monotonically repulsive at short range.

Training protocol (designed for tens to a few hundred rows):

* inputs standardised with the training mean and standard deviation (constant columns
  get a scale of 1);
* targets: the representation coefficients divided by one common scale (the square root
  of their total variance), so that the mean squared error of the outputs is
  proportional to the squared error of the compressed potential on the grid;
* network: ``hidden`` layers with SiLU activations plus a linear skip connection from the
  inputs to the outputs (a linear trend is learnt even from very few rows); the output
  layer and the skip connection start at zero, so the untrained network predicts the
  reference (mean) potential; AdamW, full-batch, float32;
* input selection: a group-lasso penalty ``input_sparsity * sum_j ||W[:, j]||`` on the
  weights leaving each input ``j`` (first layer and skip connection), the neural analogue
  of automatic relevance determination. Few of the 19 parameters may matter for the
  potential; on the synthetic family (4 relevant of 19) it more than halved the test
  error in the well of the unpenalised network at 60 and at 200 training rows;
* early stopping: a seeded ``validation_fraction`` of the rows (of the groups, when
  ``groups`` are given) is held out, training stops after ``patience`` epochs without
  improvement of the validation loss, and the best epoch count is kept; with
  ``refit_full`` the network is then retrained from the same initial weights on all rows
  for that many epochs;
* determinism: torch's RNG is seeded inside a forked RNG state and torch runs on one
  thread during fit and predict, so the same data and seed give bit-identical weights.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from cgflow.errors import InvalidInputError
from cgflow.ml.features import model_inputs
from cgflow.ml.representation import PotentialRepresentation

#: Version of the serialised format of the potential models.
FORMAT_VERSION = 1


@contextlib.contextmanager
def torch_single_thread(seed: int | None = None) -> Iterator[None]:
    """Run torch on one thread (and, with ``seed``, in a forked, seeded RNG state)."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if seed is None:
            yield
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                yield
    finally:
        torch.set_num_threads(n_threads)


class _Network(nn.Module):
    """MLP with SiLU activations plus a linear skip connection from inputs to outputs."""

    def __init__(self, n_in: int, hidden: Sequence[int], n_out: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for h in hidden:
            layers += [nn.Linear(width, h), nn.SiLU()]
            width = h
        layers.append(nn.Linear(width, n_out))
        self.body = nn.Sequential(*layers)
        self.skip = nn.Linear(n_in, n_out, bias=False)
        # start from the reference potential (all coefficients 0): training moves away
        # from it only as far as the data support, which matters with few rows
        for lin in (layers[-1], self.skip):
            nn.init.zeros_(lin.weight)
        nn.init.zeros_(layers[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)

    def input_group_norm(self) -> torch.Tensor:
        """Sum over inputs of the L2 norm of all weights leaving that input."""
        w = torch.cat([self.body[0].weight, self.skip.weight], dim=0)
        return torch.sqrt(torch.sum(w**2, dim=0) + 1e-12).sum()


class StructureModel:
    """Parameters (n, 19) -> CG pair potential (n, G) in kJ/mol on the grid ``r_nm``.

    Parameters
    ----------
    r_nm
        (G,) grid of the potentials, nm; its last point is the cut-off.
    hidden
        Widths of the hidden layers.
    learning_rate, weight_decay
        AdamW settings.
    input_sparsity
        Weight of the group-lasso penalty on the inputs' outgoing weights.
    max_epochs, patience
        Early-stopping limits (full-batch epochs).
    validation_fraction
        Fraction of rows (or groups) held out for early stopping.
    refit_full
        Retrain on all rows for the best epoch count after early stopping.
    seed
        Seed of the validation split and of torch's initialisation.
    representation
        Keyword arguments of :class:`~cgflow.ml.representation.PotentialRepresentation`.

    Attributes
    ----------
    training_info_
        After fit: rows, best epoch, number of coefficients, fit time, and the training
        and early-stopping validation errors as RMS over the grid of the weighted,
        compressed potential (kJ/mol in the well and tail; see the representation).
    metadata
        Free JSON-able dict saved with the model (:func:`~cgflow.ml.training.train_all`
        puts the campaign and the dataset hash there).
    """

    kind: ClassVar[str] = "structure"

    def __init__(
        self, r_nm: Sequence[float] | np.ndarray, *, hidden: Sequence[int] = (64, 64),
        learning_rate: float = 1e-2, weight_decay: float = 1e-4, input_sparsity: float = 3e-4,
        max_epochs: int = 2000,
        patience: int = 200, validation_fraction: float = 0.15, refit_full: bool = True,
        seed: int = 0, representation: dict[str, Any] | None = None,
        molecule_features: bool = False,
    ) -> None:
        self.r_nm = np.asarray(r_nm, dtype=float).reshape(-1)
        self.hidden = tuple(int(h) for h in hidden)
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.input_sparsity = float(input_sparsity)
        self.max_epochs = int(max_epochs)
        self.patience = int(patience)
        self.validation_fraction = float(validation_fraction)
        self.refit_full = bool(refit_full)
        self.seed = int(seed)
        self.representation = dict(representation or {})
        self.molecule_features = bool(molecule_features)
        if not 0.0 < self.validation_fraction < 1.0:
            raise InvalidInputError(
                f"field 'validation_fraction': must be in (0, 1), got {validation_fraction!r}"
            )
        if self.max_epochs < 1 or self.patience < 1:
            raise InvalidInputError(
                f"fields 'max_epochs'/'patience': must be >= 1, got {max_epochs!r}/{patience!r}"
            )
        self.net_: _Network | None = None
        self.metadata: dict[str, Any] = {}

    # --- helpers ------------------------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        return {
            "hidden": list(self.hidden), "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay, "input_sparsity": self.input_sparsity,
            "max_epochs": self.max_epochs,
            "patience": self.patience, "validation_fraction": self.validation_fraction,
            "refit_full": self.refit_full, "seed": self.seed,
            "representation": self.representation,
            # only when set: single-molecule models keep the settings they always had
            **({"molecule_features": True} if self.molecule_features else {}),
        }

    def _inputs(self, X: Any, molecules: Any) -> np.ndarray:
        """Model inputs (:func:`cgflow.ml.features.model_inputs`) of parameters ``X``."""
        return model_inputs(X, molecules=molecules, molecule_features=self.molecule_features)

    def _check_targets(self, U: Any, n: int) -> np.ndarray:
        U = np.asarray(U, dtype=float)
        if U.shape != (n, self.r_nm.size):
            raise InvalidInputError(
                f"U: expected shape ({n}, {self.r_nm.size}) (one potential per row of X on the "
                f"model's grid), got {U.shape}"
            )
        if not np.all(np.isfinite(U)):
            raise InvalidInputError("U: non-finite potential values")
        return U

    def _new_network(self) -> _Network:
        return _Network(self.x_mean_.size, self.hidden, self.rep_.n_components)

    def _validation_rows(self, n: int, groups: np.ndarray | None) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        if groups is None:
            n_val = max(1, int(round(self.validation_fraction * n)))
            return np.sort(rng.permutation(n)[:n_val])
        uniq = np.unique(groups)
        if uniq.size < 2:
            raise InvalidInputError("groups: need at least 2 distinct groups for early stopping")
        n_val = max(1, int(round(self.validation_fraction * uniq.size)))
        val_groups = rng.permutation(uniq)[:n_val]
        return np.nonzero(np.isin(groups, val_groups))[0]

    def _train(self, x: torch.Tensor, z: torch.Tensor, epochs: int,
               x_val: torch.Tensor | None = None, z_val: torch.Tensor | None = None
               ) -> tuple[_Network, int, float, float]:
        """Train a fresh network (seeded); returns (net, best_epoch, train_loss, val_loss)."""
        torch.manual_seed(self.seed)
        net = self._new_network()
        opt = torch.optim.AdamW(net.parameters(), lr=self.learning_rate,
                                weight_decay=self.weight_decay)
        best = (float("inf"), 0, None)
        loss_val = float("nan")
        for epoch in range(1, epochs + 1):
            opt.zero_grad()
            loss = torch.mean((net(x) - z) ** 2)
            if self.input_sparsity > 0:
                loss = loss + self.input_sparsity * net.input_group_norm()
            loss.backward()
            opt.step()
            if x_val is not None:
                with torch.no_grad():
                    loss_val = float(torch.mean((net(x_val) - z_val) ** 2))
                if loss_val < best[0]:
                    best = (loss_val, epoch, {k: v.clone() for k, v in net.state_dict().items()})
                elif epoch - best[1] >= self.patience:
                    break
        if x_val is not None and best[2] is not None:
            net.load_state_dict(best[2])
            with torch.no_grad():
                loss_train = float(torch.mean((net(x) - z) ** 2))
            return net, best[1], loss_train, best[0]
        with torch.no_grad():
            loss_train = float(torch.mean((net(x) - z) ** 2))
        return net, epochs, loss_train, loss_val

    # --- fit / predict ---------------------------------------------------------------------------

    def fit(self, X: Any, U: Any, *, groups: Any = None, molecules: Any = None
            ) -> StructureModel:
        """Fit on parameters ``X`` (n, 19) and potentials ``U`` (n, G) in kJ/mol.

        ``groups`` (n,), optional: rows of one group are kept together in the
        early-stopping split. ``molecules`` (n,): canonical SMILES of each row's molecule
        (a model with ``molecule_features``).
        """
        X = self._inputs(X, molecules)
        U = self._check_targets(U, X.shape[0])
        n = X.shape[0]
        if n < 3:
            raise InvalidInputError(f"X: need at least 3 rows to train, got {n}")
        g = None if groups is None else np.asarray(groups).reshape(-1)
        if g is not None and g.shape != (n,):
            raise InvalidInputError(f"groups: expected shape ({n},), got {g.shape}")
        t0 = time.perf_counter()
        self.rep_ = PotentialRepresentation(**self.representation).fit(self.r_nm, U)
        self.x_mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.x_scale_ = np.where(std > 0, std, 1.0)
        Z = self.rep_.encode(U)
        self.z_scale_ = float(np.sqrt(np.sum(Z.var(axis=0)))) or 1.0
        x_all = torch.from_numpy(((X - self.x_mean_) / self.x_scale_).astype(np.float32))
        z_all = torch.from_numpy((Z / self.z_scale_).astype(np.float32))
        val = self._validation_rows(n, g)
        train = np.setdiff1d(np.arange(n), val)
        with torch_single_thread(self.seed):
            _, best_epoch, loss_tr, loss_val = self._train(
                x_all[train], z_all[train], self.max_epochs, x_all[val], z_all[val])
            if self.refit_full:
                net, _, loss_tr, _ = self._train(x_all, z_all, best_epoch)
            else:
                net, *_ = self._train(x_all[train], z_all[train], best_epoch)
        self.net_ = net.eval()
        k, grid = self.rep_.n_components, self.r_nm.size
        to_kj = self.z_scale_ * np.sqrt(k / grid)  # RMS over the grid, compressed units
        self.training_info_ = {
            "n_rows": n, "n_validation_rows": int(val.size), "best_epoch": int(best_epoch),
            "train_rms_compressed_kj_mol": float(np.sqrt(loss_tr) * to_kj),
            "validation_rms_compressed_kj_mol": float(np.sqrt(loss_val) * to_kj),
            "n_components": k, "fit_seconds": time.perf_counter() - t0,
        }
        return self

    def _check_fitted(self) -> None:
        if self.net_ is None:
            raise InvalidInputError(f"{self.kind} model: not fitted (call fit or load first)")

    def predict_coefficients(self, X: Any, molecules: Any = None) -> np.ndarray:
        """Representation coefficients (n, K) for parameters (n, 19)."""
        self._check_fitted()
        X = self._inputs(X, molecules)
        x = torch.from_numpy(((X - self.x_mean_) / self.x_scale_).astype(np.float32))
        with torch_single_thread(), torch.no_grad():
            z = self.net_(x).numpy().astype(float)
        return z * self.z_scale_

    def predict(self, X: Any, molecules: Any = None) -> np.ndarray:
        """Potentials (n, G) in kJ/mol on :attr:`r_nm` for parameters (n, 19)."""
        z = self.predict_coefficients(X, molecules)
        return self.rep_.decode(z)

    def predict_forces(self, X: Any, molecules: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """``(U, F)``: potentials (n, G) in kJ/mol and forces -dU/dr (n, G) in kJ/(mol nm)."""
        U = self.predict(X, molecules)
        return U, self.rep_.forces(U)

    # --- serialisation ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """``{"metadata": JSON-able dict, "weights": torch state dict}``.

        The metadata holds the kind, format version, settings, grid, input scaler, target
        scale, the fitted representation (basis) and the training information, plus
        whatever the caller put in :attr:`metadata` (e.g. the dataset hash).
        """
        self._check_fitted()
        meta = {
            "kind": self.kind, "format_version": FORMAT_VERSION, "settings": self._settings(),
            "r_nm": self.r_nm.tolist(), "x_mean": self.x_mean_.tolist(),
            "x_scale": self.x_scale_.tolist(), "z_scale": self.z_scale_,
            "representation": self.rep_.to_dict(), "training": self.training_info_,
            "extra": self.metadata, "torch_version": torch.__version__,
        }
        return {"metadata": meta, "weights": self.net_.state_dict()}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> StructureModel:
        """Rebuild a fitted model from :meth:`state_dict` output."""
        meta = state["metadata"]
        if meta.get("kind") != cls.kind:
            raise InvalidInputError(
                f"model state: expected kind {cls.kind!r}, got {meta.get('kind')!r}"
            )
        if meta.get("format_version") != FORMAT_VERSION:
            raise InvalidInputError(
                f"model state: unsupported format_version {meta.get('format_version')!r} "
                f"(this cgflow reads {FORMAT_VERSION})"
            )
        s = dict(meta["settings"])
        model = cls(meta["r_nm"], **s)
        model.x_mean_ = np.asarray(meta["x_mean"], dtype=float)
        model.x_scale_ = np.asarray(meta["x_scale"], dtype=float)
        model.z_scale_ = float(meta["z_scale"])
        model.rep_ = PotentialRepresentation.from_dict(meta["representation"])
        model.training_info_ = dict(meta["training"])
        model.metadata = dict(meta.get("extra", {}))
        net = model._new_network()
        net.load_state_dict(state["weights"])
        model.net_ = net.eval()
        return model

    def to_bytes(self) -> bytes:
        """A zip archive with ``metadata.json`` and ``weights.pt`` (torch state dict)."""
        state = self.state_dict()
        buf = io.BytesIO()
        weights = io.BytesIO()
        torch.save(state["weights"], weights)
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("metadata.json", json.dumps(state["metadata"]))
            zf.writestr("weights.pt", weights.getvalue())
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> StructureModel:
        """Inverse of :meth:`to_bytes` (weights are loaded with ``weights_only=True``)."""
        try:
            with zipfile.ZipFile(io.BytesIO(blob)) as zf:
                meta = json.loads(zf.read("metadata.json"))
                weights = torch.load(io.BytesIO(zf.read("weights.pt")), weights_only=True)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise InvalidInputError(
                f"{cls.kind} model: not a saved model archive ({exc})"
            ) from None
        return cls.from_state_dict({"metadata": meta, "weights": weights})

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_bytes` to ``path``; returns the path."""
        path = Path(path)
        path.write_bytes(self.to_bytes())
        return path

    @classmethod
    def load(cls, path: str | Path) -> StructureModel:
        """Read a model written by :meth:`save`."""
        return cls.from_bytes(Path(path).read_bytes())
