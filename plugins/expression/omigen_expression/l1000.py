"""L1000 landmark genes, and reconstruction of the other genes from them.

The L1000 platform (LINCS / Connectivity Map) measures 978 landmark genes and infers the rest of
the transcriptome from them. omigen can generate only the landmarks and reconstruct every other
gene with a regression trained on real data:

- :func:`landmark_genes` / :func:`landmark_table`: the bundled list (``data/l1000_landmarks.tsv``,
  provenance in ``data/L1000_SOURCE.md``);
- :func:`match_landmarks`: which genes of a data set are landmarks (by symbol, then ignoring case,
  then by Entrez id for numeric gene names);
- :class:`Reconstructor`: landmarks -> other genes, ``"ridge"`` (scikit-learn ``RidgeCV``, one
  penalty per gene chosen by leave-one-out CV) or ``"mlp"`` (a small torch MLP with early stopping);
- :func:`reconstruction_scores` / :func:`summarise`: per-gene held-out R² and Pearson r.

Inputs and outputs are in the units the user works in (e.g. log2(x+1)); both sides are standardised
inside the model. A fitted reconstructor's :meth:`Reconstructor.state_dict` holds only tensors,
lists, strings and numbers, so checkpoints holding it load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from omigen.errors import OmigenInputError

if TYPE_CHECKING:
    import pandas as pd

LANDMARK_FILE = Path(__file__).resolve().parent / "data" / "l1000_landmarks.tsv"
KINDS = ("ridge", "mlp")
#: Ridge penalties tried per gene; inputs are standardised, so they are relative to the sample count.
RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0)
# Row and gene blocks bound the float64 temporaries to a few hundred MB at 5,000 x 12,000.
_ROWS = 1024
_GENES = 2048


# -- the landmark list -------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _table() -> "pd.DataFrame":
    import pandas as pd

    return pd.read_csv(LANDMARK_FILE, sep="\t", dtype=str, keep_default_na=False)


def landmark_table() -> "pd.DataFrame":
    """The 978 L1000 landmark genes in file order: columns ``entrez_id`` and ``symbol`` (strings)."""
    return _table().copy()


def landmark_genes() -> list[str]:
    """The 978 landmark gene symbols in file order."""
    return _table()["symbol"].tolist()


def match_landmarks(genes: Sequence[str], need_others: bool = True) -> tuple[list[str], list[str]]:
    """``(landmarks among genes, the other genes)``, both as named in ``genes`` and in their order.

    A gene is a landmark when its name is a landmark symbol, else when it is one ignoring case,
    else when it is a number equal to a landmark's Entrez id. Each landmark is matched at most once
    (the first such gene in data order); a second gene that maps to it stays among the others.
    Raises :class:`OmigenInputError` when fewer than 2 landmarks are found, or no other gene remains
    and ``need_others`` is on.
    """
    names = [str(g) for g in genes]
    table = _table()
    symbols = table["symbol"].tolist()
    exact = set(symbols)
    by_upper = {s.upper(): s for s in symbols}
    by_entrez = dict(zip(table["entrez_id"].tolist(), symbols))
    found: dict[str, int] = {}  # landmark symbol -> position in names
    taken: set[int] = set()
    rules = (lambda g: g if g in exact else None,
             lambda g: by_upper.get(g.strip().upper()),
             lambda g: by_entrez.get(str(int(g))) if g.strip().isascii() and g.strip().isdigit() else None)
    for rule in rules:  # a whole pass per rule, so an exact match wins over an earlier case-insensitive one
        for i, name in enumerate(names):
            symbol = None if i in taken else rule(name)
            if symbol is not None and symbol not in found:
                found[symbol] = i
                taken.add(i)
    if len(found) < 2:
        raise OmigenInputError(f"only {len(found)} of the {len(symbols)} L1000 landmark genes are among the data's "
                               f"{len(names)} genes (matched by symbol, ignoring case, or by Entrez id); "
                               "need at least 2")
    if need_others and len(taken) == len(names):
        raise OmigenInputError(f"all {len(names)} genes of the data are L1000 landmarks: no other gene to reconstruct")
    return [names[i] for i in sorted(taken)], [n for i, n in enumerate(names) if i not in taken]


# -- reconstruction ----------------------------------------------------------------------------------
def _matrix(x: Any, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype not in (np.float32, np.float64):  # float32 is kept: a float64 copy of big data is 2x the memory
        arr = arr.astype(np.float64)
    if arr.ndim != 2:
        raise OmigenInputError(f"{what} must be a 2-D matrix (samples x genes), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise OmigenInputError(f"{what} holds {int((~np.isfinite(arr)).sum())} non-finite value(s)")
    return arr


def _scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sd = x.std(axis=0, dtype=np.float64)
    # a constant column scales to zeros rather than to NaN
    return x.mean(axis=0, dtype=np.float64), np.where(sd > 0, sd, 1.0)


def _ridge(Xs: np.ndarray, Ys: np.ndarray, alphas: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(coef genes x landmarks, intercept, alpha per gene)`` of per-gene RidgeCV fits."""
    from sklearn.linear_model import RidgeCV

    coef = np.empty((Ys.shape[1], Xs.shape[1]), dtype=np.float64)
    intercept = np.empty(Ys.shape[1], dtype=np.float64)
    alpha = np.empty(Ys.shape[1], dtype=np.float64)
    # Per-gene penalties make gene blocks independent, so blocking changes nothing but memory.
    for j in range(0, Ys.shape[1], _GENES):
        block = slice(j, j + _GENES)
        model = RidgeCV(alphas=tuple(alphas), alpha_per_target=True).fit(Xs, Ys[:, block])
        coef[block] = np.atleast_2d(model.coef_)
        intercept[block] = model.intercept_
        alpha[block] = model.alpha_
    return coef, intercept, alpha


def _mlp(n_in: int, n_out: int, hidden: Sequence[int], dropout: float, shortcut: bool):
    """``{"body": MLP, "skip": Linear}`` (skip only with ``shortcut``); see :func:`_forward`."""
    from torch import nn

    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, int(h)), nn.GELU(), nn.Dropout(dropout)]
        width = int(h)
    layers.append(nn.Linear(width, n_out))
    parts: dict[str, nn.Module] = {"body": nn.Sequential(*layers)}
    if shortcut:
        parts["skip"] = nn.Linear(n_in, n_out)
    return nn.ModuleDict(parts)


def _forward(net, x):
    y = net["body"](x)
    return y + net["skip"](x) if "skip" in net else y


def _tensor(a: Any):
    import torch

    return torch.as_tensor(np.ascontiguousarray(np.asarray(a))).cpu().clone()


@dataclass
class Reconstructor:
    """Regression from landmark genes to the other genes, fitted on real training data.

    ``kind`` ``"ridge"``: scikit-learn ``RidgeCV`` with one penalty per gene from ``alphas``, chosen
    by efficient leave-one-out CV. ``kind`` ``"mlp"``: ``hidden`` GELU layers with ``dropout``,
    AdamW (``lr``, ``weight_decay``) on mini-batches of ``batch_size``, early stopping when the
    loss on a seeded ``val_fraction`` of the training samples has not improved for ``patience``
    epochs (the best epoch's weights are kept); deterministic for a seed on the CPU. The MLP runs
    with torch's current thread count (the caller's choice) on ``device``.

    With ``shortcut`` (the default) the MLP adds to a frozen linear path holding the ridge fit on
    its training part, and its output layer starts at zero: it learns only what the ridge misses,
    and early stopping (which scores the ridge alone as epoch 0) keeps it from doing worse on the
    validation part; once the epoch is chosen, the linear path is refitted on all training samples
    (this matters when there are about as many samples as landmarks). Without, it is a plain MLP,
    which needs many samples per landmark to match the ridge on near-linear data.

    Predictions are clipped to each gene's training range when ``clip`` is on. After fitting,
    ``history`` holds the chosen penalties (ridge) or the validation losses per epoch (MLP).
    """

    kind: str = "ridge"
    alphas: tuple[float, ...] = RIDGE_ALPHAS
    hidden: tuple[int, ...] = (512,)
    dropout: float = 0.1
    weight_decay: float = 1e-4
    lr: float = 3e-3
    batch_size: int = 128
    max_epochs: int = 300
    patience: int = 20
    val_fraction: float = 0.1
    shortcut: bool = True
    clip: bool = True
    device: str = "cpu"
    fitted: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    history: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _net: Any = field(default=None, init=False, repr=False, compare=False)  # the built MLP, rebuilt on demand

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise OmigenInputError(f"reconstructor kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not 0 < self.val_fraction < 1:
            raise OmigenInputError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if not self.alphas or min(self.alphas) <= 0:
            raise OmigenInputError(f"ridge alphas must be positive, got {self.alphas}")
        self.alphas = tuple(float(a) for a in self.alphas)
        self.hidden = tuple(int(h) for h in self.hidden)

    # fitting
    def fit(self, X_landmarks: Any, X_rest: Any, seed: int = 0) -> "Reconstructor":
        """Fit on real training data: ``X_landmarks`` (samples x landmarks) -> ``X_rest`` (samples x genes)."""
        X, Y = _matrix(X_landmarks, "landmark matrix"), _matrix(X_rest, "matrix of genes to reconstruct")
        if X.shape[0] != Y.shape[0]:
            raise OmigenInputError(f"{X.shape[0]} landmark rows but {Y.shape[0]} rows of genes to reconstruct")
        if X.shape[0] < 4:
            raise OmigenInputError(f"need at least 4 training samples to fit a reconstructor, got {X.shape[0]}")
        if X.shape[1] < 1 or Y.shape[1] < 1:
            raise OmigenInputError(f"need at least one landmark and one gene to reconstruct, got "
                                   f"{X.shape[1]} and {Y.shape[1]}")
        x_mean, x_scale = _scale(X)
        y_mean, y_scale = _scale(Y)
        self.fitted = {"x_mean": x_mean, "x_scale": x_scale, "y_mean": y_mean, "y_scale": y_scale,
                       "y_min": Y.min(axis=0).astype(np.float64), "y_max": Y.max(axis=0).astype(np.float64)}
        Xs, Ys = (X - x_mean) / x_scale, (Y - y_mean) / y_scale
        if self.kind == "ridge":
            coef, intercept, alpha = _ridge(Xs, Ys, self.alphas)
            self.fitted.update(coef=coef, intercept=intercept, alpha=alpha)
            self.history = {"alpha_counts": {a: int((alpha == a).sum()) for a in self.alphas}}
        else:
            self._fit_mlp(Xs, Ys, int(seed))
        return self

    def _fit_mlp(self, Xs: np.ndarray, Ys: np.ndarray, seed: int) -> None:
        import torch

        n = Xs.shape[0]
        order = np.random.default_rng(seed).permutation(n)
        n_val = min(n - 2, max(1, int(round(self.val_fraction * n))))
        val, tr = np.sort(order[:n_val]), np.sort(order[n_val:])
        dev = torch.device(self.device)

        def tensor(a: np.ndarray):
            return torch.from_numpy(a.astype(np.float32)).to(dev)

        x_tr, y_tr, x_val, y_val = tensor(Xs[tr]), tensor(Ys[tr]), tensor(Xs[val]), tensor(Ys[val])
        # A private RNG stream: the caller's torch RNG is left as it was, and a seed gives one result.
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(seed)
            net = _mlp(Xs.shape[1], Ys.shape[1], self.hidden, self.dropout, self.shortcut).to(dev)
            if self.shortcut:
                coef, intercept, _ = _ridge(Xs[tr], Ys[tr], self.alphas)
                with torch.no_grad():
                    net["skip"].weight.copy_(torch.from_numpy(coef))
                    net["skip"].bias.copy_(torch.from_numpy(intercept))
                    net["body"][-1].weight.zero_()
                    net["body"][-1].bias.zero_()
                net["skip"].requires_grad_(False)
            opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=self.lr,
                                    weight_decay=self.weight_decay)

            def val_loss() -> float:
                net.eval()
                with torch.no_grad():
                    return float(torch.nn.functional.mse_loss(_forward(net, x_val), y_val))

            losses = [val_loss()]  # epoch 0: the ridge alone with a shortcut, the random start without
            best, best_epoch = losses[0], 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            for epoch in range(1, self.max_epochs + 1):
                net.train()
                perm = torch.randperm(len(tr)).to(dev)
                for start in range(0, len(tr), self.batch_size):
                    idx = perm[start:start + self.batch_size]
                    loss = torch.nn.functional.mse_loss(_forward(net, x_tr[idx]), y_tr[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                losses.append(val_loss())
                if losses[-1] < best:
                    best, best_epoch = losses[-1], epoch
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                elif epoch - best_epoch >= self.patience:
                    break
        net.load_state_dict(best_state)
        if self.shortcut:  # model selection done, the linear path may use every training sample
            coef, intercept, _ = _ridge(Xs, Ys, self.alphas)
            with torch.no_grad():
                net["skip"].weight.copy_(torch.from_numpy(coef))
                net["skip"].bias.copy_(torch.from_numpy(intercept))
            best_state = net.state_dict()
        net.eval()
        self._net = net
        self.fitted["weights"] = {k: v.detach().cpu().clone() for k, v in best_state.items()}
        self.history = {"epochs": len(losses) - 1, "best_epoch": best_epoch, "best_val_loss": best,
                        "val_loss": losses, "n_train": len(tr), "n_val": n_val}

    # prediction
    @property
    def n_landmarks(self) -> int:
        """Number of input (landmark) genes of the fitted model."""
        self._check_fitted()
        return int(self.fitted["x_mean"].shape[0])

    @property
    def n_rest(self) -> int:
        """Number of reconstructed genes of the fitted model."""
        self._check_fitted()
        return int(self.fitted["y_mean"].shape[0])

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise OmigenInputError("the reconstructor is not fitted: call fit() or from_state() first")

    def _network(self):
        if self._net is None:
            import torch

            net = _mlp(self.n_landmarks, self.n_rest, self.hidden, self.dropout, self.shortcut)
            net.load_state_dict({k: torch.as_tensor(v) for k, v in self.fitted["weights"].items()})
            self._net = net.to(torch.device(self.device)).eval()
        return self._net

    def predict(self, X_landmarks: Any) -> np.ndarray:
        """Reconstructed genes (samples x genes, float32, in the training units) from landmark values."""
        self._check_fitted()
        X = _matrix(X_landmarks, "landmark matrix")
        if X.shape[1] != self.n_landmarks:
            raise OmigenInputError(f"the reconstructor was fitted on {self.n_landmarks} landmarks, "
                                   f"got {X.shape[1]} columns")
        f = self.fitted
        out = np.empty((X.shape[0], self.n_rest), dtype=np.float32)
        for i in range(0, X.shape[0], _ROWS):
            rows = slice(i, i + _ROWS)
            Xs = (X[rows] - f["x_mean"]) / f["x_scale"]
            if self.kind == "ridge":
                Ys = Xs @ f["coef"].T + f["intercept"]
            else:
                import torch

                net = self._network()
                with torch.no_grad():
                    Ys = _forward(net, torch.from_numpy(Xs.astype(np.float32)).to(next(net.parameters()).device))
                Ys = Ys.cpu().numpy().astype(np.float64)
            Y = Ys * f["y_scale"] + f["y_mean"]
            out[rows] = np.clip(Y, f["y_min"], f["y_max"]) if self.clip else Y
        return out

    # saving
    def state_dict(self) -> dict[str, Any]:
        """Plain state: options as numbers/lists, fitted arrays as CPU tensors (``weights_only``-safe)."""
        self._check_fitted()
        options = {"kind": self.kind, "alphas": list(self.alphas), "hidden": list(self.hidden),
                   "dropout": self.dropout, "weight_decay": self.weight_decay, "lr": self.lr,
                   "batch_size": self.batch_size, "max_epochs": self.max_epochs, "patience": self.patience,
                   "val_fraction": self.val_fraction, "shortcut": self.shortcut, "clip": self.clip}
        arrays = {k: _tensor(v) for k, v in self.fitted.items() if k != "weights"}
        if "weights" in self.fitted:
            arrays["weights"] = {k: _tensor(v) for k, v in self.fitted["weights"].items()}
        return {"options": options, "fitted": arrays}

    @classmethod
    def from_state(cls, state: dict[str, Any], device: str = "cpu") -> "Reconstructor":
        """Rebuild a fitted reconstructor from :meth:`state_dict` output (e.g. after ``torch.load``)."""
        needed = {"ridge": ("coef", "intercept"), "mlp": ("weights",)}
        try:
            options, arrays = dict(state["options"]), dict(state["fitted"])
            rec = cls(**{**options, "alphas": tuple(options["alphas"]), "hidden": tuple(options["hidden"])},
                      device=device)
            missing = [k for k in ("x_mean", "x_scale", "y_mean", "y_scale", "y_min", "y_max", *needed[rec.kind])
                       if k not in arrays]
        except (KeyError, TypeError, ValueError):
            raise OmigenInputError("not a reconstructor state: expected 'options' and 'fitted'") from None
        if missing:
            raise OmigenInputError(f"reconstructor state lacks {', '.join(missing)}")
        rec.fitted = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items() if k != "weights"}
        if rec.kind == "mlp":
            rec.fitted["weights"] = {k: _tensor(v) for k, v in arrays["weights"].items()}
        return rec


# -- scores ------------------------------------------------------------------------------------------
def reconstruction_scores(y_true: Any, y_pred: Any, genes: Sequence[str]) -> "pd.DataFrame":
    """Per-gene R² and Pearson r of predictions against held-out truth (columns gene, r2, pearson).

    R² is ``1 - SSE / SST`` around the gene's held-out mean (negative when worse than that mean).
    A gene constant in ``y_true`` gets NaN for both (:func:`summarise` counts them); a prediction
    constant over the samples of a varying gene carries no information and gets Pearson r 0.
    """
    import pandas as pd

    T, P = _matrix(y_true, "true values"), _matrix(y_pred, "predicted values")
    genes = [str(g) for g in genes]
    if T.shape != P.shape:
        raise OmigenInputError(f"true values {T.shape} and predictions {P.shape} differ in shape")
    if T.shape[1] != len(genes):
        raise OmigenInputError(f"{len(genes)} gene names for {T.shape[1]} columns")
    if T.shape[0] < 2:
        raise OmigenInputError(f"need at least 2 samples to score, got {T.shape[0]}")
    r2 = np.empty(T.shape[1])
    pearson = np.empty(T.shape[1])
    for j in range(0, T.shape[1], _GENES):
        cols = slice(j, j + _GENES)
        t, p = T[:, cols].astype(np.float64), P[:, cols].astype(np.float64)
        tc, pc = t - t.mean(axis=0), p - p.mean(axis=0)
        sst, spp = (tc * tc).sum(axis=0), (pc * pc).sum(axis=0)
        sse = ((t - p) ** 2).sum(axis=0)
        # Exact constancy (max == min): a mean of equal floats can be off by an ulp, sst then not 0.
        const_t = t.max(axis=0) == t.min(axis=0)
        const_p = p.max(axis=0) == p.min(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            r2[cols] = np.where(const_t, np.nan, 1.0 - sse / sst)
            r = np.clip((tc * pc).sum(axis=0) / np.sqrt(sst * spp), -1.0, 1.0)
        pearson[cols] = np.where(const_t, np.nan, np.where(const_p, 0.0, r))
    return pd.DataFrame({"gene": genes, "r2": r2, "pearson": pearson})


def summarise(df: "pd.DataFrame") -> dict[str, float]:
    """Summary of :func:`reconstruction_scores` over the genes with a score (constant genes left out).

    Keys: ``median_r2``, ``mean_r2``, ``median_pearson``, ``mean_pearson``, ``fraction_r2_above_0.5``
    (among scored genes), ``n_genes`` (all rows) and ``n_constant`` (rows without a score).
    """
    r2 = df["r2"].to_numpy(dtype=np.float64)
    pr = df["pearson"].to_numpy(dtype=np.float64)
    scored = ~np.isnan(r2)

    def stat(fn, values: np.ndarray) -> float:
        values = values[~np.isnan(values)]
        return float(fn(values)) if values.size else float("nan")

    return {"median_r2": stat(np.median, r2), "mean_r2": stat(np.mean, r2),
            "median_pearson": stat(np.median, pr), "mean_pearson": stat(np.mean, pr),
            "fraction_r2_above_0.5": float((r2[scored] > 0.5).mean()) if scored.any() else float("nan"),
            "n_genes": len(df), "n_constant": int((~scored).sum())}
