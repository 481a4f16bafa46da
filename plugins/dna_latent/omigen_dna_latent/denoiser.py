"""Stage 2: a class-conditioned 1-D U-Net denoiser and the latent diffusion model around it.

The U-Net sees the normalised latent ``(B, C, L')``, the timestep and a label (``y < 0`` or
``None`` is the null label of classifier-free guidance). A sinusoidal position code is added
after the input convolution so the network knows where along the sequence it is: regulatory
motifs sit at preferred positions, which convolutions alone cannot locate. Lengths that the
U-Net cannot halve evenly are padded on the right and cropped back.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from omigen.config import NULL_LABEL, DiffusionConfig
from omigen.diffusion import DiffusionModel, make_betas
from omigen_dna_latent.autoencoder import DnaAutoencoder
from omigen_dna_latent.config import AutoencoderConfig, DenoiserConfig


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


def sinusoidal(values: Tensor, dim: int) -> Tensor:
    """Transformer-style sinusoidal codes ``(len(values), dim)`` of integer positions or timesteps."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=values.device, dtype=torch.float32) / half)
    args = values.float()[:, None] * freqs[None]
    out = torch.cat([args.sin(), args.cos()], dim=1)
    return F.pad(out, (0, dim - 2 * half))


def kmer_log_ratios(codes: Tensor, labels: Tensor, n_classes: int, order: int, pseudocount: float = 1.0) -> Tensor:
    """``(n_classes, 4**order, 4)``: per class, ``log p_class(base | order bases before) - log p_all(...)``
    of order-``order`` Markov chains fitted to integer-coded ``codes`` ``(n, L)`` with ``labels``
    ``(n,)`` (before the start counts as A, as in :func:`context_index`; ``pseudocount`` per cell)."""
    codes, labels = codes.long(), labels.long()
    cells = (context_index(codes, order) * 4 + codes).reshape(-1)
    rows = labels[:, None].expand_as(codes).reshape(-1)
    cells_per_class = 4 ** (order + 1)
    counts = torch.bincount(rows * cells_per_class + cells, minlength=n_classes * cells_per_class)
    counts = counts.double().view(n_classes, 4 ** order, 4) + pseudocount
    pooled = counts.sum(0)
    per_class = counts.log() - counts.sum(-1, keepdim=True).log()
    return (per_class - (pooled.log() - pooled.sum(-1, keepdim=True).log())).float()


def context_index(codes: Tensor, k: int) -> Tensor:
    """``(B, L)``: the k bases before each position of integer-coded ``codes`` ``(B, L)`` as one
    number, the base just before in the lowest base-4 digit; before the start counts as A (0),
    the same in training and sampling, and the position code tells the U-Net where it is."""
    index = torch.zeros_like(codes)
    for j in range(1, k + 1):
        index += F.pad(codes[:, :-j], (j, 0))[:, : codes.shape[1]] * 4 ** (j - 1)
    return index


class ResBlock(nn.Module):
    """Residual block whose second half is scaled and shifted by the time/label embedding."""

    def __init__(self, cin: int, cout: int, emb: int, dropout: float) -> None:
        super().__init__()
        self.in_layers = nn.Sequential(_norm(cin), nn.SiLU(), nn.Conv1d(cin, cout, 3, padding=1))
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb, 2 * cout))
        self.out_norm = _norm(cout)
        self.out_layers = nn.Sequential(nn.SiLU(), nn.Dropout(dropout), nn.Conv1d(cout, cout, 3, padding=1))
        nn.init.zeros_(self.out_layers[-1].weight)
        nn.init.zeros_(self.out_layers[-1].bias)
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.in_layers(x)
        scale, shift = self.emb(emb)[:, :, None].chunk(2, dim=1)
        h = self.out_layers(self.out_norm(h) * (1 + scale) + shift)
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over the length axis, residual."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.norm = _norm(channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(x).transpose(1, 2)
        out, _ = self.attn(h, h, h, need_weights=False)
        return x + out.transpose(1, 2)


class UNet1d(nn.Module):
    """``forward(x, t, y) -> (B, out_channels, L')`` over latents ``(B, in_channels, L')`` (``eps`` when
    ``out_channels`` is left at ``in_channels``); ``n_classes = 0``: unconditional."""

    def __init__(self, in_channels: int, config: DenoiserConfig, n_classes: int = 0,
                 out_channels: int | None = None) -> None:
        super().__init__()
        config.validate()
        self.config, self.n_classes = config, int(n_classes)
        c = config.channels
        widths = [c * m for m in config.mults]
        emb = 4 * c
        self.time_mlp = nn.Sequential(nn.Linear(c, emb), nn.SiLU(), nn.Linear(emb, emb))
        # Index n_classes is the null label, so one table serves conditional and unconditional calls.
        self.label_emb = nn.Embedding(n_classes + 1, emb) if n_classes else None
        self.conv_in = nn.Conv1d(in_channels, c, 3, padding=1)
        self.pos = nn.Linear(c, c)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        prev = c
        for i, w in enumerate(widths):
            self.down.append(nn.ModuleList(ResBlock(prev if j == 0 else w, w, emb, config.dropout)
                                           for j in range(config.blocks)))
            prev = w
            self.downsample.append(nn.Conv1d(w, w, 4, stride=2, padding=1) if i < len(widths) - 1 else nn.Identity())
        self.mid1 = ResBlock(prev, prev, emb, config.dropout)
        self.attn = SelfAttention(prev, config.heads) if config.attention else nn.Identity()
        self.mid2 = ResBlock(prev, prev, emb, config.dropout)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(widths))):
            w = widths[i]
            self.upsample.append(nn.Conv1d(prev, w, 3, padding=1) if i < len(widths) - 1 else nn.Identity())
            inc = w if i < len(widths) - 1 else prev
            self.up.append(nn.ModuleList(ResBlock(inc + w if j == 0 else w, w, emb, config.dropout)
                                         for j in range(config.blocks)))
            prev = w
        self.out = nn.Sequential(_norm(prev), nn.SiLU(), nn.Conv1d(prev, out_channels or in_channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    @property
    def multiple(self) -> int:
        """Lengths are padded to a multiple of this."""
        return 2 ** (len(self.config.mults) - 1)

    def _embedding(self, t: Tensor, y: Tensor | None, batch: int) -> Tensor:
        emb = self.time_mlp(sinusoidal(t.expand(batch) if t.dim() == 0 else t, self.config.channels))
        if self.label_emb is not None:
            if y is None:
                idx = torch.full((batch,), self.n_classes, dtype=torch.long, device=emb.device)
            else:
                y = y.long().to(emb.device)
                idx = torch.where(y < 0, torch.full_like(y, self.n_classes), y)
            emb = emb + self.label_emb(idx)
        return emb

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        length = x.shape[-1]
        pad = (-length) % self.multiple
        h = F.pad(x, (0, pad)) if pad else x
        emb = self._embedding(t, y, x.shape[0])
        positions = torch.arange(h.shape[-1], device=x.device)
        h = self.conv_in(h) + self.pos(sinusoidal(positions, self.config.channels)).t()[None]
        skips = []
        for blocks, down in zip(self.down, self.downsample):
            for block in blocks:
                h = block(h, emb)
            skips.append(h)
            h = down(h)
        h = self.mid2(self.attn(self.mid1(h, emb)), emb)
        for blocks, up in zip(self.up, self.upsample):
            skip = skips.pop()
            if not isinstance(up, nn.Identity):
                h = up(F.interpolate(h, size=skip.shape[-1], mode="nearest"))
            h = torch.cat([h, skip], dim=1)
            for block in blocks:
                h = block(h, emb)
        return self.out(h)[..., :length]


class BasePredictor(nn.Module):
    """A U-Net that predicts the bases, seen by the diffusion maths as an ``eps`` denoiser.

    The U-Net outputs ``4 * factor`` channels per latent position: logits over ACGT for each of
    the ``factor`` bases that position covers. At each sampling step a sequence is drawn from
    those per-base probabilities and the x0 estimate is its latent under a frozen copy of the
    autoencoder's encoder, normalised like the training latents; the step gets the noise that
    estimate implies, ``(x_t - sqrt(ab_t) x0) / sqrt(1 - ab_t)``. Classifier-free guidance mixes
    the conditional and unconditional log-probabilities before the draw.

    A drawn x0 rather than the encoder's latent of the soft probabilities: the encoder is
    nonlinear, so a soft mix of two bases lands nearer one of them, and over the steps the
    sampler drifted to it (on the DHS subset C 29% and G 17% of bases instead of 23% each).

    With ``context = k > 0`` the U-Net outputs ``4**k`` rows of logits per base, one for each
    possible run of the k bases before it, and the draw walks the sequence left to right taking
    each base from the row its drawn predecessors select. Independent per-base draws given a
    noisy latent put together neighbours the model never meant to pair (too many CpG on the DHS
    data); the chain keeps such dependencies.

    With ``kmer_order = m > 0`` and ``n_classes`` labels the model also holds, per class, the
    log-ratio of an m-th order Markov chain fitted to that class's training sequences to one fitted
    to all of them (:func:`kmer_log_ratios`, set by :meth:`LatentDiffusion.set_kmer_guidance`).
    Summed over a sequence that ratio is the log-odds of the class under those chains (a k-mer
    classifier), so adding ``kmer_guidance`` times it to each base's log-probability in the draw
    is classifier guidance towards the label's k-mers: the U-Net alone learns each cell type's
    composition but barely its motifs (plugin README).
    """

    def __init__(self, unet: UNet1d, encoder: nn.Module, factor: int, config: DiffusionConfig,
                 latent_channels: int, context: int = 0, n_classes: int = 0, kmer_order: int = 0) -> None:
        super().__init__()
        self.unet, self.encoder, self.factor = unet, encoder, int(factor)
        self.context, self.rows = int(context), 4 ** int(context)
        self.kmer_order = int(kmer_order) if n_classes else 0
        #: weight of the k-mer log-ratios in the draw (a sampling setting, set by ``generate``)
        self.kmer_guidance = 0.0
        self.set_calibration(None)
        if self.kmer_order:
            self.register_buffer("kmer_ratios", torch.zeros(int(n_classes), 4 ** self.kmer_order, 4))
        self.encoder.requires_grad_(False)
        ab = torch.tensor(np.cumprod(1.0 - make_betas(config)), dtype=torch.float32)
        self.register_buffer("sqrt_ab", ab.sqrt(), persistent=False)
        self.register_buffer("sqrt_one_minus_ab", (1.0 - ab).sqrt(), persistent=False)
        self.register_buffer("latent_mean", torch.zeros(latent_channels, 1))
        self.register_buffer("latent_std", torch.ones(latent_channels, 1))

    def logits(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        """Per-base logits of the clean sequence given ``x_t``: ``(B, L' * factor, 4)``, or with
        ``context`` k > 0 ``(B, L, 4**k, 4)``, row ``r`` for the preceding bases coded ``r`` (see
        :func:`context_index`)."""
        out = self.unet(x, t, y)
        B, _, Lp = out.shape
        out = out.view(B, self.factor, self.rows, 4, Lp).permute(0, 4, 1, 2, 3)
        out = out.reshape(B, Lp * self.factor, self.rows, 4)
        return out[:, :, 0] if self.context == 0 else out

    def base_logits(self, logits: Tensor, codes: Tensor) -> Tensor:
        """``(B, L, 4)``: each base's logits given the bases before it in ``codes`` ``(B, L)``."""
        if self.context == 0:
            return logits
        rows = context_index(codes, self.context)
        return logits.gather(2, rows[:, :, None, None].expand(-1, -1, 1, 4)).squeeze(2)

    def set_calibration(self, table: Tensor | None, bin_width: int = 1, weight: float = 1.0) -> None:
        """Use a calibration table ``(classes, bins, 4**m, 4)`` of log-ratios, real against the model's
        own draws, per class, bin of ``bin_width`` positions and m preceding bases
        (:mod:`omigen_dna_latent.calibration`); ``None`` removes it. A sampling setting, not a weight
        of the network: it is kept beside the checkpoint, not in it."""
        if table is not None and (table.dim() != 4 or table.shape[-1] != 4):
            raise ValueError(f"a calibration table has shape (classes, bins, 4**m, 4), got {tuple(table.shape)}")
        self.calibration, self.calibration_bin, self.calibration_weight = table, int(bin_width), float(weight)

    def _tilts(self, y: Tensor | None, batch: int, length: int, device: torch.device) -> list[tuple]:
        """The tables the draw adds to each base's log-probability: ``(table (C, bins, 4**m, 4), class
        per row, weight per row, bin width)`` for the k-mer guidance and the calibration in use. A table
        fitted without labels (one class) applies to every row; a labelled one skips the null label."""
        y = torch.full((batch,), -1, device=device) if y is None else torch.as_tensor(y, device=device)
        y = y.long().expand(batch)
        labelled = y >= 0  # the null label of guidance gets no tilt
        cls = torch.where(labelled, y, torch.zeros_like(y))
        tilts = []
        if self.kmer_order > 0 and self.kmer_guidance != 0.0:
            tilts.append((self.kmer_ratios[:, None], cls, self.kmer_guidance * labelled.float()[:, None],
                          length))
        table = getattr(self, "calibration", None)
        if table is not None and self.calibration_weight != 0.0:
            if table.shape[0] == 1:  # fitted without labels: every row gets it
                cls, labelled = torch.zeros_like(cls), torch.ones_like(labelled)
            tilts.append((table.to(device), cls, self.calibration_weight * labelled.float()[:, None],
                          self.calibration_bin))
        return tilts

    def draw(self, logp: Tensor, generator: torch.Generator | None = None, y: Tensor | None = None) -> Tensor:
        """Integer-coded sequences ``(B, L)`` drawn from (guided) log-probabilities as returned by
        :meth:`logits`, tilted towards labels ``y`` by the k-mer log-ratios when ``kmer_guidance`` is set
        and by the calibration table when one is set (:meth:`set_calibration`)."""
        shape = logp.shape[:2] + (4,)
        u = torch.rand(shape, generator=generator, device=logp.device).clamp_(1e-20, 1.0)
        gumbel = -(-u.log()).log()  # Gumbel-max: one draw per base
        B, L = shape[:2]
        tilts = self._tilts(y, B, L, logp.device)
        if self.context == 0 and not tilts:
            return (logp + gumbel).argmax(-1)
        if self.context == 0:
            logp = logp[:, :, None]
        drawn = torch.empty(B, L, dtype=torch.long, device=logp.device)
        row = torch.zeros(B, dtype=torch.long, device=logp.device)
        batch = torch.arange(B, device=logp.device)
        kmers = [torch.zeros_like(row) for _ in tilts]
        for i in range(L):  # along the sequence, vectorised over the batch: each base needs its predecessors
            scores = logp[batch, i, row] + gumbel[:, i]
            for (table, cls, weight, width), kmer in zip(tilts, kmers):
                scores = scores + weight * table[cls, i // width, kmer]
            base = drawn[:, i] = scores.argmax(-1)
            row = (row * 4 + base) % self.rows
            for j, (table, *_) in enumerate(tilts):
                kmers[j] = (kmers[j] * 4 + base) % table.shape[2]
        return drawn

    def encode(self, probs: Tensor) -> Tensor:
        """Normalised latent ``(B, C, L')`` of (soft) one-hot sequences ``(B, L, 4)``."""
        z = self.encoder(probs.transpose(1, 2))
        return (z - self.latent_mean) / self.latent_std

    def guided_eps(self, x: Tensor, t: Tensor, y: Tensor | None = None, guidance: float = 1.0,
                   generator: torch.Generator | None = None) -> Tensor:
        """The noise implied by a sequence drawn (from ``generator``) from the guided base probabilities."""
        t = torch.as_tensor(t, device=x.device).long().expand(x.shape[0])
        if y is None or guidance == 1.0:
            logp = self.logits(x, t, y).log_softmax(-1)
        elif guidance == 0.0:
            logp = self.logits(x, t, torch.full_like(y, NULL_LABEL)).log_softmax(-1)
        else:
            both = self.logits(torch.cat([x, x]), torch.cat([t, t]),
                               torch.cat([y, torch.full_like(y, NULL_LABEL)])).log_softmax(-1)
            cond, uncond = both.chunk(2)
            logp = uncond + guidance * (cond - uncond)
        x0 = self.encode(F.one_hot(self.draw(logp, generator, y), 4).to(x.dtype))
        return (x - self.sqrt_ab[t].view(-1, 1, 1) * x0) / self.sqrt_one_minus_ab[t].view(-1, 1, 1)

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        return self.guided_eps(x, t, y)


class LatentDiffusion(nn.Module):
    """A :class:`omigen.diffusion.DiffusionModel` over normalised latents, with the normalisation.

    ``latent_mean``/``latent_std`` (per channel, persistent buffers, so they travel in the
    checkpoint) map the autoencoder's latents to roughly unit scale and back.
    """

    kind = "dna-latent-diffusion"

    def __init__(self, denoiser: nn.Module, config: DiffusionConfig, latent_shape: tuple[int, int],
                 n_classes: int = 0) -> None:
        super().__init__()
        self.model = DiffusionModel(denoiser, config, tuple(latent_shape), n_classes=n_classes)
        c = int(latent_shape[0])
        self.register_buffer("latent_mean", torch.zeros(c, 1))
        self.register_buffer("latent_std", torch.ones(c, 1))

    @property
    def n_classes(self) -> int:
        """0 for an unconditional model."""
        return self.model.n_classes

    @property
    def predicts_bases(self) -> bool:
        """True when the denoiser is a :class:`BasePredictor` (trained on sequences, not latents)."""
        return isinstance(self.model.denoiser, BasePredictor)

    def set_normalisation(self, latents: Tensor) -> None:
        """Per-channel mean and standard deviation of ``latents`` ``(n, C, L')``."""
        flat = latents.detach().float().transpose(0, 1).reshape(latents.shape[1], -1)
        self.latent_mean.copy_(flat.mean(1, keepdim=True))
        self.latent_std.copy_(flat.std(1, keepdim=True).clamp_min(1e-6))
        if self.predicts_bases:
            self.model.denoiser.latent_mean.copy_(self.latent_mean)
            self.model.denoiser.latent_std.copy_(self.latent_std)

    def set_kmer_guidance(self, codes: Tensor, labels: Tensor) -> None:
        """Fit the per-class k-mer log-ratios of a :class:`BasePredictor` with ``kmer_order > 0`` to the
        integer-coded training sequences ``codes`` ``(n, L)`` and their class indices (else a no-op)."""
        den = self.model.denoiser
        if self.predicts_bases and den.kmer_order:
            den.kmer_ratios.copy_(kmer_log_ratios(codes, labels, den.kmer_ratios.shape[0], den.kmer_order))

    def set_encoder(self, autoencoder: nn.Module) -> None:
        """Copy the trained autoencoder's encoder into a :class:`BasePredictor` denoiser (frozen)."""
        if self.predicts_bases:
            self.model.denoiser.encoder.load_state_dict(autoencoder.encoder.state_dict())

    def normalise(self, z: Tensor) -> Tensor:
        """Autoencoder latents -> diffusion space."""
        return (z - self.latent_mean.to(z.device)) / self.latent_std.to(z.device)

    def denormalise(self, x: Tensor) -> Tensor:
        """Diffusion space -> autoencoder latents."""
        return x * self.latent_std.to(x.device) + self.latent_mean.to(x.device)

    def loss(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Training loss of one batch (labels ignored when unconditional): noise-prediction MSE on
        normalised latents ``x``, or, for a :class:`BasePredictor`, the cross-entropy of its base
        logits where ``x`` holds the integer-coded sequences ``(B, L)``."""
        if not self.predicts_bases:
            return self.model.loss(x, y)
        if self.n_classes == 0:
            y = None
        elif y is None:
            raise ValueError("a class-conditional model needs labels in each training batch")
        den = self.model.denoiser
        codes = x.long()
        with torch.no_grad():
            x0 = den.encode(F.one_hot(codes, 4).float())
        x_t, t, _, y = self.model.diffusion.noised(x0, y)
        return F.cross_entropy(den.base_logits(den.logits(x_t, t, y), codes).reshape(-1, 4), codes.reshape(-1))

    def sample(self, n: int, y=None, **options) -> Tensor:
        """``n`` autoencoder latents (denormalised), see :meth:`DiffusionModel.sample` for ``options``."""
        return self.denormalise(self.model.sample(n, y, **options))


def build_latent_diffusion(config: DenoiserConfig, info: dict) -> LatentDiffusion:
    """The ``dna-latent-denoiser`` model: ``info`` has ``latent_channels``, ``latent_length``,
    ``n_classes``, ``diffusion`` (a :class:`DiffusionConfig` or its dict) and, for
    ``predict="bases"``, ``autoencoder`` (its :class:`AutoencoderConfig` or dict; the weights come
    from :meth:`LatentDiffusion.set_encoder` or the checkpoint)."""
    diffusion = info.get("diffusion") or DiffusionConfig()
    if isinstance(diffusion, dict):
        diffusion = DiffusionConfig(**diffusion)
    c, length = int(info["latent_channels"]), int(info["latent_length"])
    n_classes = int(info.get("n_classes", 0))
    if config.predict == "eps":
        return LatentDiffusion(UNet1d(c, config, n_classes), diffusion, (c, length), n_classes)
    ae_config = info.get("autoencoder")
    if ae_config is None:
        raise ValueError("a base-predicting denoiser (predict='bases') needs info['autoencoder']")
    if isinstance(ae_config, dict):
        ae_config = AutoencoderConfig(**ae_config)
    if ae_config.latent_channels != c:
        raise ValueError(f"latent_channels {c} differs from the autoencoder's {ae_config.latent_channels}")
    factor = 2 ** ae_config.downsample
    unet = UNet1d(c, config, n_classes, out_channels=4 ** (config.context + 1) * factor)
    denoiser = BasePredictor(unet, DnaAutoencoder(ae_config).encoder, factor, diffusion, c, config.context,
                             n_classes, config.kmer_order)
    return LatentDiffusion(denoiser, diffusion, (c, length), n_classes)
