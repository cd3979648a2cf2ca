"""Profiles: the same experiments at three scales, the CPU scale in two capacity regimes.

* ``smoke`` — every run takes seconds on a 2-core CPU; for CI and for
  checking that the book builds. Numbers are meaningless.
* ``cpu`` — a real small-scale reproduction on a 2-core CPU, the low-capacity
  regime (hours for the whole grid). See :data:`CPU_PROFILE_NOTES` for how it was sized.
* ``cpu-high`` — the same scale in the high-capacity regime: networks that fit
  their adversarial training sets (:data:`CPU_HIGH_PROFILE_NOTES`). Both CPU
  profiles evaluate as :data:`RESOLUTION_EVAL` says, on grids planned in
  :data:`RESOLUTION_PLAN_NOTES`.
* ``paper`` — Appendix D exactly: ResNet-56 / ResNet-110 (Fixup, no BN),
  batch 256, 200 epochs, lr 0.05 divided by 10 at epochs 100 and 150,
  momentum 0.9; WRN-50-2 on Tiny-ImageNet, batch 256, 90 epochs, lr 0.1
  divided by 10 at 30 and 60; PGD-10 with step 2/255; eps in {4, 8, 16}.

A profile gives the base :class:`~arlib.config.RunConfig` of a dataset and
the grid of cells of every experiment (``pgd``, ``fgsm``, ``deep``,
``spectral``); :mod:`arlib.grid` expands and runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import AdvConfig, DataConfig, EvalConfig, ModelConfig, RunConfig, TrainConfig, standard_adv, validate
from .errors import ConfigError

EXPERIMENTS = ("pgd", "fgsm", "deep", "spectral")

CPU_PROFILE_NOTES = """\
How the cpu profile was sized (2-core AMD EPYC with AVX-512 BF16, shared with
other jobs while measuring; the probe runs are committed in results/probes):

* Throughput of one PGD-10 training step, batch 64, bf16 autocast +
  channels_last vs fp32 NCHW, 2 threads: ResNet-8 213 vs 109 img/s,
  ResNet-14 130 vs 87, ResNet-20 99 vs 59. A PGD cell costs about 11x a
  plain one, so the grid's 19 PGD-trained cells (of 23) decide the budget.
* Fitting at eps 0 (no augmentation, Fixup ResNet-14, plain training):
  100 img/class, batch 64, lr 0.05, 20 epochs: train 43.1%, test 38.4%;
  same, lr 0.1, 30 epochs: train 64.5%, test 39.6%;
  100 img/class, batch 32, lr 0.05, 30 epochs: train 93.9%, test 44.1%;
  50 img/class, batch 32, lr 0.05, 40 epochs: train 96.2%, test 36.1%, loss gap 2.92;
  50 img/class, batch 32, lr 0.1: diverged.
  Without batch norm, Fixup's zero-initialised branches learn slowly at
  first, so it takes a few hundred small-batch steps to fit; the number of
  steps, not of images, is what a CPU can afford.
* Augmentation off: a probe (BN ResNet-20, 2,000 images, 40
  epochs) reached only 62% training accuracy at eps 0 with augmentation and
  99.95% without; the paper's regime is a network that fits its training
  set (Table 3: 99.5% at eps 4) with a test loss well above its training
  loss, which only the un-augmented runs reach on this budget.

Chosen: 50 training images per class (500), 100 test images per class
(1,000; since the resolution design, all 10,000: RESOLUTION_PLAN_NOTES), Fixup ResNet-8 (ResNet-14 as B.4.1's deeper network), batch 32,
lr 0.05 divided by 10 at epochs 30 and 36, 40 epochs, PGD-10 with step 2/255.
ResNet-8 instead of the probed ResNet-14 because it is 1.6x faster per PGD
step, which brings the 23-cell grid (with 3 seeds at eps 4 and 16) within
the budget of a 2-core machine.
"""


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    datasets: dict[str, DataConfig]  # dataset -> its data section
    model: ModelConfig
    deep_model: ModelConfig  # B.4.1's deeper network (ResNet-110 in the paper)
    train: dict[str, TrainConfig]  # dataset -> training schedule
    eval: EvalConfig = field(default_factory=EvalConfig)
    eps_grid: tuple[float, ...] = (4, 8, 16)  # defensive strengths of adversarial training
    include_eps0: bool = True  # add the plain-training cell (eps 0)
    spectral_grid: tuple[float, ...] = (1, 3, 5)  # SP targets of B.4.2 (None = uncontrolled = the pgd cell)
    seeds: tuple[int, ...] = (0,)
    claim_seeds: tuple[int, ...] = (0,)  # extra seeds for the pgd cells the claims hinge on
    claim_eps: tuple[float, ...] = (4, 16)  # ... at these eps (0 = the plain-training cell)
    # Extra seeds of the fgsm, deep and spectral cells at the two ends of eps_grid (the strengths
    # a trend is judged between); end_seed_targets: the spectral-norm targets that get them (None: all).
    end_seeds: tuple[int, ...] = ()
    end_seed_targets: tuple[float, ...] | None = None
    models_by_dataset: dict[str, ModelConfig] = field(default_factory=dict)
    # Experiments run per dataset (default: all). The paper clips spectral norms on CIFAR-10 only
    # (Table 6), trains with FGSM and the deeper ResNet-110 on CIFAR only (Tables 2-4).
    experiments_by_dataset: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def base(self, dataset: str) -> RunConfig:
        if dataset not in self.datasets:
            raise ConfigError(f"profile '{self.name}' has no dataset '{dataset}' (choose from {', '.join(self.datasets)})")
        model = self.models_by_dataset.get(dataset, self.model)
        return validate(RunConfig(data=self.datasets[dataset], model=model, adv=AdvConfig(), train=self.train[dataset], eval=self.eval))

    def cells(self, dataset: str, experiment: str, seeds: tuple[int, ...] | None = None) -> list[RunConfig]:
        """The runs of one experiment of this profile on ``dataset``."""
        base = self.base(dataset)
        seeds = seeds or self.seeds
        out: list[RunConfig] = []
        if experiment in EXPERIMENTS and experiment not in self.experiments_by_dataset.get(dataset, EXPERIMENTS):
            return out

        def add(cfg: RunConfig) -> None:
            for s in seeds:
                out.append(cfg.replace(train={"seed": s}))

        if experiment == "pgd":
            for eps in ((0,) if self.include_eps0 else ()) + tuple(self.eps_grid):
                add(base.replace(adv=standard_adv(eps, "pgd")))
        elif experiment == "fgsm":
            for eps in self.eps_grid:
                add(base.replace(adv=standard_adv(eps, "fgsm")))
        elif experiment == "deep":
            for eps in self.eps_grid:
                add(base.replace(adv=standard_adv(eps, "pgd"), model=vars(self.deep_model)))
        elif experiment == "spectral":
            for sp in self.spectral_grid:
                for eps in self.eps_grid:
                    add(base.replace(adv=standard_adv(eps, "pgd"), train={"spectral_norm": sp}))
        else:
            raise ConfigError(f"unknown experiment '{experiment}' (choose from {', '.join(EXPERIMENTS)})")
        return out

    def claim_cells(self, dataset: str, experiment: str = "pgd") -> list[RunConfig]:
        """Extra seeds the claims ledger needs error bars on: ``claim_seeds`` of the pgd cells at
        ``claim_eps``; ``end_seeds`` of the other experiments' cells at the ends of ``eps_grid``."""
        if experiment == "pgd":
            seeds = tuple(s for s in self.claim_seeds if s not in self.seeds)
            return [c for c in self.cells(dataset, "pgd", seeds) if c.adv.eps in self.claim_eps] if seeds else []
        seeds = tuple(s for s in self.end_seeds if s not in self.seeds)
        if not seeds:
            return []
        ends = (min(self.eps_grid), max(self.eps_grid))
        return [
            c
            for c in self.cells(dataset, experiment, seeds)
            if c.adv.eps in ends and (experiment != "spectral" or self.end_seed_targets is None or c.train.spectral_norm in self.end_seed_targets)
        ]


def _cifar_train(epochs: int, batch: int, lr: float, milestones: tuple[int, ...], **kw) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=batch, lr=lr, milestones=milestones, **kw)


RESOLUTION_PLAN_NOTES = """\
The grids of the resolution design (issue 19), planned before launching them.

Evaluation per cell (measured on the first cells, two one-thread workers
sharing the 2-core machine with development jobs): clean accuracy and loss on
all 10,000 test images and every training image plus PGD-10 on 2,000 test
images take 35-55 s for the low-capacity ResNet-8 and 70 s (idle) to 150 s
(loaded) for the high-capacity ResNet-20, against 5-25 s for the old
1,000-image evaluation; ResNet-32 about 2x ResNet-20. Measured idle, one thread:
a forward pass over the 10,000 test images takes 5 s (ResNet-8), 13 s (ResNet-20)
and 21 s (ResNet-32); PGD-10 over 2,000 images 21 s, 56 s and 113 s.

Cells and seeds (33 per regime): PGD at eps 0, 4, 8, 16 with seeds 0, 1, 2
(12 cells); FGSM and the deeper network at eps 4, 8, 16 with a second seed at
the ends, 4 and 16 (5 cells each); spectral-norm clipping at 3 targets x 3 eps
with a second seed for the tightest target at 4 and 16 (11 cells). One seed
only, noise borrowed from the PGD cells at the same eps: FGSM, deeper network
and every clipping target at eps 8, and the intermediate clipping targets
(shown, not judged) everywhere.

Minutes (one thread, train + evaluation + analysis; from the earlier grids'
provenance and the first cells of this one): low capacity, PGD ~6 per cell,
plain ~2, FGSM ~3, ResNet-14 ~9, clipping ~9: ~230 core-minutes; high
capacity, PGD ~17, plain ~8, FGSM ~6, ResNet-32 ~28, clipping ~27: ~650
core-minutes. Together ~880 core-minutes, ~7.3 h on two workers: at the
7-hour budget; the order (every PGD seed first) puts the cells the claims
need most first if the budget runs out.

Attack audit after the grid (`arlib audit`, arlib.audit; D's "Is PGD-10
fooled?"): APGD-CE then APGD-DLR, 100 steps, fp32, on 500 of the 2,000 test
images PGD-10 attacked, for the 9 PGD-trained cells (eps 4, 8, 16 x 3 seeds)
of each regime. Measured, one thread on the loaded machine: 1.4-4.0 min a
low-capacity run (22 core-minutes for 9), 2.2-4.0 min a high-capacity run
(28 core-minutes for 9); the attacks only run on the clean-correct images
(20-40 % here), which keeps them cheap.
"""

# The evaluation of the cpu profiles since issue 19 (Appendix D.2's PGD-10, step 2, radius 8): clean
# accuracy and loss on all 10,000 CIFAR-10 test images and every training image (their data sets
# set test_per_class None); PGD on a fixed class-balanced 2,000 of them; the per-epoch test curve
# and B.5's loss variation on a fixed 1,000. Per-example outcomes are stored with each run.
RESOLUTION_EVAL = EvalConfig(eps=8, alpha=2, steps=10, batch_size=500, attack_per_class=200, monitor_per_class=100)

SMOKE = Profile(
    name="smoke",
    description="seconds per run: 20 images per class, ResNet-8 width 1, 2 epochs; for CI, numbers meaningless",
    datasets={"cifar10": DataConfig("cifar10", train_per_class=20, test_per_class=10, subset_seed=None, augment=True)},
    model=ModelConfig("resnet8"),
    deep_model=ModelConfig("resnet14"),
    train={"cifar10": _cifar_train(2, 50, 0.05, (1,))},
    eval=EvalConfig(eps=8, alpha=2, steps=3, batch_size=100, attack_per_class=5, monitor_per_class=5),
    spectral_grid=(1, 3),
)

CPU = Profile(
    name="cpu",
    description="small real reproduction on a 2-core CPU: CIFAR-10, 50 training images per class (drawn by the "
    "seed), all 10,000 test images, Fixup ResNet-8 (deeper: ResNet-14), 40 epochs, no augmentation",
    datasets={"cifar10": DataConfig("cifar10", train_per_class=50, test_per_class=None, subset_seed=None, augment=False)},
    model=ModelConfig("resnet8"),
    deep_model=ModelConfig("resnet14"),
    train={"cifar10": _cifar_train(40, 32, 0.05, (30, 36))},
    eval=RESOLUTION_EVAL,
    # Spectral-norm targets that bind at this scale: the unclipped option-A networks' layer norms
    # are 1.5-4.8 at eps 4, 1.4-3.6 at eps 8 and 0.9-2.6 at eps 16 (3 seeds at 4 and 16), so the
    # paper's 3 and 5 would clip nothing at eps 16 (the first grid's SP 5 never bound); 1 binds
    # almost every layer at every eps, 1.5 about half of them at eps 16, 2 the largest one or two.
    spectral_grid=(1, 1.5, 2),
    claim_seeds=(0, 1, 2),
    claim_eps=(0, 4, 8, 16),
    end_seeds=(1,),
    end_seed_targets=(1,),  # as cpu-high: the tightest target is the one B.4.2 judges
)

PAPER = Profile(
    name="paper",
    description="Appendix D exactly (GPU): ResNet-56/110 Fixup, 200 epochs; WRN-50-2 on Tiny-ImageNet, 90 epochs",
    datasets={
        "cifar10": DataConfig("cifar10", augment=True),
        "cifar100": DataConfig("cifar100", augment=True),
        "tinyimagenet": DataConfig("tinyimagenet", augment=True),
    },
    model=ModelConfig("resnet56"),
    deep_model=ModelConfig("resnet110"),
    models_by_dataset={"tinyimagenet": ModelConfig("wrn50_2", bn=True, shortcut="B")},
    experiments_by_dataset={"cifar100": ("pgd", "fgsm", "deep"), "tinyimagenet": ("pgd",)},
    train={
        "cifar10": _cifar_train(200, 256, 0.05, (100, 150)),
        "cifar100": _cifar_train(200, 256, 0.05, (100, 150)),
        "tinyimagenet": _cifar_train(90, 256, 0.1, (30, 60)),
    },
    eval=EvalConfig(eps=8, alpha=2, steps=10, batch_size=500),
)

CPU_HIGH_PROFILE_NOTES = """\
How the high-capacity cpu profile was sized (the probes are committed in
results/probes; all ResNets with the paper's option-A shortcuts, no
augmentation, batch 32, PGD-10 with step 2/255, one thread each on a 2-core
machine shared with other jobs).

The bar: clean training accuracy >= 95 % at eps 4 and 8 and >= 90 %
at eps 16, as the paper's ResNet-56 (99.5 / 98.5 / 96.0 %), test accuracy
clearly above chance, the whole grid within 4 hours on two workers.

* eps 8 fits easily: an option-B ResNet-20 on 50 images per class, lr 0.05,
  100 epochs, reached 99.2 % clean training accuracy (test 37.0 %).
* eps 16 does not fit on this budget. Earlier probes (option-B ResNet-20):
  50/class, lr 0.05, 100 epochs: 36.8 %; 20/class, 150 epochs: 48.5 %;
  50/class, lr 0.01: 28.8 %. With option A, 20/class, lr 0.05, 100 epochs,
  batch 32: ResNet-8 width 2: 43.0 % (test 24.9 %); width 4 is 2.5x slower
  per image and its adversarial training loss followed width 2's for the 41
  epochs it ran (2.18 vs 2.16), so width alone does not help; a longer
  schedule (300 epochs) followed the 100-epoch curve (adversarial loss 2.11
  at epoch 57 vs 2.13), i.e. ~1.1e-3 per epoch; an eps ramp over 10 epochs
  (not kept) gave 2.16 vs 2.20 at epoch 30.
* Larger steps do not help but collapse: lr 0.1 (5-epoch warm-up) stayed at
  ln 10 for 19 epochs; lr 0.2 diverged (NaN); batch 8 at lr 0.05 (4x the
  updates) collapsed to a constant classifier within 10 epochs. At eps 16
  the usable step size is bounded by collapse from above and by the
  training budget from below.

Learning rate and network. The first grid cell of the earlier choice
(ResNet-8 width 2, 20/class, 200 epochs, lr 0.05, eps 4) reached 59 %
running adversarial accuracy at epoch 74 and then diverged (epoch 80:
adversarial loss 5.8e6, then NaN; stopped probe 95c6bfc4). At lr 0.02 the
same network learned more slowly (eps 4: 21.5 % running adversarial accuracy
at epoch 30 vs 25 % at lr 0.05; eps 8: 18.5 % at epoch 30; stopped probes
2e7fb6ff and 1ca114ab), with half of its 200 epochs left before the first
decay and no evidence yet that it would fit. The deeper, narrower Fixup ResNet-20 costs the same per
epoch here (5.0 vs 5.4 s per 200-image PGD-10 epoch, measured side by side,
one thread each), its residual branches are scaled down by depth (Fixup's
L^-1/2 with L = 9 blocks vs 3), and its option-B twin fitted eps 8 at lr 0.05
(99.2 %, above) without diverging.

ResNet-20 with 20 images per class, lr 0.05 divided by 10 at epochs 75 and 90
of 100 (probes 7f53931e at eps 4, 7bd90034 at eps 8): clean training
accuracy 90.0 % at eps 8 (test 32.6 %), short of the bar. Its running
adversarial accuracy rose from 28 % to 57 % in the 15 epochs at lr 0.005 and
then stopped at lr 0.0005, so the schedule, not the network, was the limit.

Chosen: 20 training / 100 test images per class (since the resolution design
all 10,000 test images: RESOLUTION_PLAN_NOTES), Fixup ResNet-20 (option A,
268k parameters; deeper network: ResNet-32), batch 32, lr 0.05 for 75
epochs, then 0.005 for 50 and 0.0005 for 25 (150 epochs), PGD-10 step
2/255.

Spectral-norm targets 1, 2 and 3, chosen from the first grid runs' layer
norms (seed 0, unclipped; 20 layers: 19 convs + fc): at eps 4 they lie
between 1.10 and 7.45, at eps 8 between 1.18 and 5.83, at eps 16 between
0.71 and 4.56. Target 1 clips 20 / 20 / 16 layers at eps 4 / 8 / 16 (the
paper's SP 1: nearly every layer), 2 clips 16 / 12 / 5 and 3 clips 9 / 7 / 3
(the paper's SP 3: the largest layers). The paper's SP 5 would clip 3 / 1 / 0
layers, so at eps 16 its runs would equal the uncontrolled ones; it is not run.

Cost, measured on the grid's runs (one thread each, two workers): a PGD
cell trains in 9-18 min (3.4-7.5 s per epoch; the spread is the machine's,
it appears with nothing but the two workers running), a spectral-clipping
cell in 20-26 min (clipping after every epoch, an SVD of each conv operator
by FFT, adds ~3-4 s per epoch), and each is
analysed in ~1.5 min; plain training (eps 0) takes a few minutes. The 19
cells the claims need (PGD eps 0 / 4 / 8 / 16 with 3 seeds at 4, 8, 16, and
3 targets x 3 eps of spectral clipping) are ~300-380 core-minutes: 2 h 30 to
3 h 10 on two workers, inside the 4-hour budget; FGSM and the deeper
ResNet-32 would add ~1 h.
"""

CPU_HIGH = Profile(
    name="cpu-high",
    description="high-capacity regime on a 2-core CPU: CIFAR-10, 20 training images per class (drawn by the seed), all 10,000 "
    "test images, Fixup ResNet-20 (deeper: ResNet-32), 150 epochs at lr 0.05 (/10 at 75 and 125), no augmentation",
    datasets={"cifar10": DataConfig("cifar10", train_per_class=20, test_per_class=None, subset_seed=None, augment=False)},
    model=ModelConfig("resnet20"),
    deep_model=ModelConfig("resnet32"),
    train={"cifar10": _cifar_train(150, 32, 0.05, (75, 125))},
    eval=RESOLUTION_EVAL,
    spectral_grid=(1, 2, 3),
    claim_seeds=(0, 1, 2),
    # Seeds at eps 8 too: on this budget the networks fit their training sets at eps 4 and 8 but
    # not at 16 (probes), so the claims are also compared between the two strengths that fit.
    claim_eps=(0, 4, 8, 16),
    end_seeds=(1,),
    # A second seed for the tightest target only: SP 1 is the level B.4.2's turn is judged on;
    # SP 2 and 3 are shown, not judged, and a spectral cell costs ~1.5x a pgd cell.
    end_seed_targets=(1,),
)

PROFILES = {p.name: p for p in (SMOKE, CPU, CPU_HIGH, PAPER)}

#: The profile ``arlib book`` renders unless told otherwise: its results are committed, so the
#: book builds on a fresh clone without training.
DEFAULT_BOOK_PROFILE = "cpu"


def get(name: str) -> Profile:
    if name not in PROFILES:
        raise ConfigError(f"unknown profile '{name}' (choose from {', '.join(PROFILES)})")
    return PROFILES[name]
