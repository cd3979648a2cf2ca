"""``arlib`` command line: train, grid, eval, analyse, audit, runs, book, chapter, lab.

Every user error (unknown dataset or model, eps outside [0, 255], a data
root that does not exist, a malformed config, missing data) prints one line
``arlib: error: ...`` and exits with code 2, having written nothing.

Examples::

    arlib train --profile smoke --eps 8
    arlib train --profile cpu --eps 4 --method fgsm --seed 1
    arlib grid --profile cpu --experiments pgd,fgsm
    arlib grid --profile paper --executor slurm --partition gpu --gpus-per-job 1 --cpus-per-task 8
    arlib audit --profile cpu
    arlib runs
    arlib book --profile smoke
    arlib chapter B5_smoothing -p eps_grid 0,8,16 -o out.ipynb
    arlib lab B5_smoothing
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from .errors import ArlibError, ConfigError


def _config_from_args(args) -> "RunConfig":  # noqa: F821
    from . import profiles
    from .config import config_from_dict, standard_adv

    if args.config:
        try:
            d = json.loads(Path(args.config).read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file '{args.config}' does not exist") from None
        except IsADirectoryError:
            raise ConfigError(f"config file '{args.config}' is a directory, not a JSON file") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"config file '{args.config}' is not UTF-8 text (byte {e.start})") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"config file '{args.config}' is not valid JSON ({e.msg}, line {e.lineno})") from None
        cfg = config_from_dict(d)
    else:
        cfg = profiles.get(args.profile).base(args.dataset)
    # All overrides in one replace: the schema checks the combination (--eps 1 --alpha 0.5), not each step.
    sections: dict[str, dict] = {}
    if args.eps is not None or args.method is not None:
        eps = args.eps if args.eps is not None else cfg.adv.eps
        method = args.method or (cfg.adv.method if cfg.adv.method != "none" else "pgd")
        sections["adv"] = standard_adv(eps, method, cfg.adv.steps, cfg.adv.alpha)
    for section, field, value in (
        ("adv", "steps", args.steps),
        ("adv", "alpha", args.alpha),
        ("model", "name", args.model),
        ("train", "epochs", args.epochs),
        ("train", "seed", args.seed),
        ("train", "precision", args.precision),
        ("train", "spectral_norm", args.spectral_norm),
    ):
        if value is not None:
            sections.setdefault(section, {})[field] = value
    cfg = cfg.replace(**sections) if sections else cfg
    _check_pgd_step(cfg.adv.method, cfg.adv.eps, cfg.adv.alpha, cfg.adv.steps, "adv")
    return cfg


def _check_root(root):
    if root is not None and not Path(root).expanduser().is_dir():
        raise ConfigError(f"data root '{root}' does not exist")


def cmd_train(args) -> int:
    from .grid import ensure_run
    from .store import Store

    cfg = _config_from_args(args)
    _check_root(args.data_root)
    store = Store.for_profile(args.store or ("custom" if args.config else args.profile), args.results)
    run = ensure_run(cfg, store, args.data_root, analyse=args.analyse, progress=not args.quiet, on_saved=args.saved.append)
    if run.diverged:  # a result, not an error: train_run said so on stderr when it happened
        print(json.dumps({"run": run.hash, "path": str(run.path), "status": "diverged", "reason": run.divergence()}, indent=1))
        return 0
    print(json.dumps({"run": run.hash, "path": str(run.path), **run.metrics()["final"]}, indent=1))
    return 0


def _check_pgd_step(method: str, eps: float, alpha: float, steps: int, what: str) -> None:
    """A PGD step of 0 never leaves the random start: refuse it instead of training or attacking with it."""
    if method == "pgd" and eps > 0 and steps > 0 and alpha == 0:
        raise ConfigError(f"{what}.alpha must be > 0 for PGD at eps {eps:g} (a step of 0 never moves from the random start)")


def cmd_grid(args) -> int:
    from .cells import cell_status
    from .grid import expand, run_grid
    from .store import Store

    _check_root(args.data_root)
    datasets = args.datasets.split(",") if args.datasets else None
    experiments = args.experiments.split(",") if args.experiments else None
    slurm = _slurm_options(args)
    store = Store.for_profile(args.profile, args.results)
    cells = expand(args.profile, datasets, experiments)
    if args.dry_run:
        queued = _queued(store)
        for c in cells:
            status, job = cell_status(store.find(c.config), queued, analyse=not args.no_analyse)
            print(
                f"{c.config.hash}  {c.experiment:8s} {status:9s} eps={c.config.adv.eps:<4g} method={c.config.adv.method} "
                f"model={c.config.model.name} sp={c.config.train.spectral_norm} seed={c.config.train.seed}" + (f" job={job}" if job else "")
            )
        return 0
    if slurm is not None:
        return _grid_on_slurm(args, store, cells, slurm)
    runs = run_grid(
        args.profile, datasets, experiments, store, args.data_root, analyse=not args.no_analyse, progress=not args.quiet, on_saved=args.saved.append
    )
    print(f"{len(runs)} runs finished in {store.root}")
    return 0


def _slurm_options(args):
    """The SlurmOptions of ``arlib grid``'s flags; None for the local executor (where they are an error)."""
    flags = {
        "partition": args.partition,
        "time_min": args.time,
        "cpus_per_task": args.cpus_per_task,
        "mem_gb": args.mem_gb,
        "gpus_per_job": args.gpus_per_job,
        "array_parallelism": args.array_parallelism,
    }
    given = {k: v for k, v in flags.items() if v is not None}
    if args.executor != "slurm":
        if given or args.slurm_arg or args.no_wait:
            raise ConfigError(
                "--partition, --time, --cpus-per-task, --mem-gb, --gpus-per-job, --array-parallelism, --slurm-arg and --no-wait need --executor slurm"
            )
        return None
    from .cluster import SlurmOptions

    extra = {}
    for kv in args.slurm_arg or []:
        key, sep, value = kv.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--slurm-arg wants key=value (an sbatch option without its dashes, e.g. account=abc), got '{kv}'")
        extra[key.strip().lstrip("-")] = value
    for k in ("time_min", "cpus_per_task", "array_parallelism"):
        if k in given and given[k] < 1:
            raise ConfigError(f"--{k.replace('_min', '').replace('_', '-')} must be at least 1, got {given[k]}")
    return SlurmOptions(**given, extra=extra)


def _queued(store) -> dict:
    from . import cluster

    return cluster.queued(store)


def _grid_on_slurm(args, store, cells, opts) -> int:
    """Submit the missing cells as one job array; wait for them unless --no-wait. Never falls back to local."""
    from . import cluster
    from .cells import todo

    cluster.check_slurm()  # before anything is written
    analyse = not args.no_analyse
    missing, busy = todo(cells, store, _queued(store), analyse)
    if not missing:
        print(
            f"nothing to submit: {len(cells) - len(busy)} of {len(cells)} cells finished"
            + (f", {len(busy)} running or queued" if busy else "")
            + f" in {store.root}"
        )
        return 0
    hashes = [c.config.hash for c in missing]
    for c in missing:
        store.run(c.config)  # the tasks read their config.json
    job = cluster.submit(store, hashes, opts, args.data_root, analyse)
    sys.stderr.write(
        f"submitted {len(hashes)} cells as SLURM job {job}"
        + (f" ({len(busy)} more already running or queued)" if busy else "")
        + f"; logs in {cluster.log_folder(store)}\n"
    )
    if args.no_wait:
        print(job)
        return 0
    try:
        cluster.wait(store, hashes, job, analyse, progress=not args.quiet)
    except KeyboardInterrupt:
        sys.stderr.write(f"arlib: stopped waiting; job {job} keeps running (arlib grid --dry-run shows it; scancel {job} stops it)\n")
        return 130
    print(f"{len(hashes)} runs finished by job {job} in {store.root}")
    return 0


def _results_root(results) -> Path:
    from .store import default_root

    root = Path(results) if results else default_root()
    if root.exists() and not root.is_dir():
        raise ConfigError(f"results root {root} is not a directory (--results or $ARLIB_RESULTS)")
    return root


def _all_runs(results) -> list:
    """Runs of every profile's store under the results root ([] when there is none; ConfigError when it is a file)."""
    from .store import Store

    root = _results_root(results)
    if not root.is_dir():
        return []
    return [r for d in sorted(root.iterdir()) if (d / "runs").is_dir() for r in Store(d).runs()]


def _one_run(results, prefix: str, store: str | None):
    """The run whose hash starts with ``prefix`` (in store ``store`` if given); ConfigError saying how to choose otherwise."""
    matches = [r for r in _all_runs(results) if r.hash.startswith(prefix) and (store is None or r.path.parent.parent.name == store)]
    if len(matches) == 1:
        return matches[0]
    where = f" in store '{store}'" if store else ""
    if not matches:
        raise ConfigError(f"no run{where} under {_results_root(results)} has a hash starting with '{prefix}' (arlib runs lists them)")
    if len({r.hash for r in matches}) == 1:
        stores = sorted(r.path.parent.parent.name for r in matches)
        raise ConfigError(f"run {matches[0].hash} is in {len(matches)} stores ({', '.join(stores)}): choose one with --store {stores[0]}")
    raise ConfigError(
        f"'{prefix}' matches {len(matches)} runs{where} "
        f"({', '.join(sorted(r.hash for r in matches)[:4])}{', ...' if len(matches) > 4 else ''}): give more of the hash"
    )


def cmd_eval(args) -> int:
    from . import data
    from .store import Run
    from .device import default_device
    from .networks import load_model
    from .store import require_sound
    from .evaluation import final_metrics

    run: Run = require_sound(_one_run(args.results, args.run, args.store))
    if run.diverged:
        raise ConfigError(f"run {run.hash} {run.divergence()}: it has no weights to attack")
    if not run.file("model.pt").exists():
        why = "model.pt is absent: runs committed before issue 19 kept no weights" if run.finished else f"status: {run.status()}"
        raise ConfigError(f"run {run.hash} has no trained model ({why})")
    cfg = run.config
    _check_pgd_step("pgd", args.eps, args.alpha, args.steps, "eval")
    # The run's own evaluation subsets (attacked and monitored test images) with the attack asked for.
    cfg = cfg.replace(eval={"eps": args.eps, "alpha": args.alpha, "steps": args.steps})
    ds = data.prepare_run(cfg, args.data_root)
    model = load_model(run, num_classes=ds.num_classes)
    print(json.dumps(final_metrics(model, ds, cfg, default_device()), indent=1))
    return 0


def cmd_analyse(args) -> int:
    from .errors import DamagedRunError
    from .grid import analyse_run

    runs = _all_runs(args.results)
    if args.run:
        runs = [r for r in runs if r.hash.startswith(args.run)]
        if not runs:
            raise ConfigError(f"no run under {_results_root(args.results)} has a hash starting with '{args.run}' (arlib runs lists them)")
    done, damaged, diverged = 0, [], 0
    for run in runs:
        try:
            if run.diverged:
                diverged += 1
            elif run.finished and not run.analysed:
                analyse_run(run, args.data_root)
                done += 1
        except DamagedRunError as e:  # the others are still analysed
            damaged.append(f"{e.path}: {e.reason}")
    print(f"analysed {done} runs" + (f" ({diverged} diverged, left out)" if diverged else ""))
    if damaged:
        raise ConfigError(f"{len(damaged)} runs with damaged files were skipped: {'; '.join(damaged)}")
    return 0


def cmd_audit(args) -> int:
    """``arlib audit``: APGD-CE and APGD-DLR on the PGD cells of a profile that have weights and no audit (:mod:`arlib.audit`)."""
    from . import profiles
    from .audit import AuditConfig, audit_profile
    from .store import Store

    profiles.get(args.profile)  # an unknown name fails here, with the message every command gives
    try:
        import torchattacks  # noqa: F401
    except ImportError:
        raise ConfigError("arlib audit needs torchattacks: pip install -e '.[audit]'") from None
    cfg = AuditConfig(per_class=args.per_class, steps=args.steps)
    store = Store(_results_root(args.results) / args.profile)
    done = audit_profile(args.profile, store, cfg, args.data_root, progress=not args.quiet)
    for s in done:
        a = s["accuracy"]
        accs = f"clean {a['clean']:.1f}  PGD-10 {a['pgd10']:.1f}  APGD-CE {a['apgd_ce']:.1f}  worst {a['worst']:.1f}"
        print(f"{s['hash'][:8]}  n {s['n']}  {accs}  ({s['seconds']:.0f} s)")
    print(f"audited {len(done)} runs of {args.profile}")
    return 0


def cmd_runs(args) -> int:
    """The store as a table; a run whose files do not parse, fit their shapes or match their checksums shows as ``damaged``.

    ``weights``: ``present``, ``absent`` (runs committed before issue 19) or ``damaged``.
    Diverged runs are listed after the table as excluded, with the reason. ``--check`` also
    loads every analysis archive, model and checkpoint (weights only), and exits 1 listing
    each damaged file (``<path>: <what>``) on stderr when any is. ``--repair HASH`` moves a
    damaged run's files aside (``<name>.damaged-<time>``) so that the grid trains it anew.
    """
    from .cells import cell_status
    from .store import Store

    if args.repair:
        return _repair(args)
    root = _results_root(args.results)
    if args.check and not root.is_dir():
        raise ConfigError(f"results root {root} does not exist: nothing to check (--results or $ARLIB_RESULTS)")
    rows = _all_runs(args.results)
    queued = {}
    for store in {Store(r.path.parent.parent) for r in rows}:
        queued.update(_queued(store))
    print(
        f"{'profile':8s} {'hash':16s} {'status':9s} {'dataset':8s} {'model':9s} {'adv':5s} {'eps':>4s} "
        f"{'sp':>4s} {'seed':>4s} {'train':>6s} {'test':>6s} {'pgd':>6s} {'min':>6s} {'weights':8s} job"
    )
    problems: list[str] = []
    damaged, excluded = 0, []
    for run in rows:
        profile = run.path.parent.parent.name
        found = run.problems(deep=args.check)
        if found:
            problems += found
            damaged += 1
            print(f"{profile:8s} {run.hash:16s} {'damaged':9s} {'':67s} {run.weights(found):8s} -")
            continue
        c = run.config
        m = run.metrics().get("final") or {} if run.finished else {}
        secs = run.read_json("provenance.json").get("train_seconds") if run.finished and run.file("provenance.json").exists() else 0

        def fmt(k, m=m):
            return f"{m[k]:6.2f}" if isinstance(m.get(k), (int, float)) else f"{'-':>6s}"

        sp = "-" if c.train.spectral_norm is None else f"{c.train.spectral_norm:g}"
        status, job = cell_status(run, queued)
        if run.diverged:
            excluded.append(f"{profile}/{run.hash}: {run.divergence()}")
        print(
            f"{profile:8s} {run.hash:16s} {status:9s} {c.data.dataset:8s} {c.model.name:9s} {c.adv.method:5s} {c.adv.eps:4g} {sp:>4s} {c.train.seed:4d} "
            f"{fmt('train_acc')} {fmt('test_acc')} {fmt('pgd_acc_correct')} {(secs or 0) / 60:6.1f} {run.weights(found):8s} {job or '-'}"
        )
    print(f"{len(rows)} runs" + (f", {damaged} damaged" if damaged else "") + (f", {len(excluded)} diverged" if excluded else "") + f" in {root}")
    for e in excluded:
        print(f"excluded from analysis, means and the book: {e}")
    if problems:
        print("damaged runs are left as they are (stderr names each file); arlib runs --repair <hash> moves one's files aside so that it is trained anew")
    for p in problems:
        sys.stderr.write(f"arlib: damaged: {p}\n")
    if args.check:
        if problems:
            return 1
        print("every run's files parse, load and match their checksums")
    return 0


def _repair(args) -> int:
    """``arlib runs --repair HASH``: the one step that moves a damaged run's files aside (kept as ``<name>.damaged-<time>``)."""
    run = _one_run(args.results, args.repair, args.store)
    moved = run.repair()
    if not moved:
        print(f"run {run.hash} has no damaged file; nothing moved")
        return 0
    print(f"run {run.hash}: moved {len(moved)} files aside ({', '.join(p.name for p in moved)}); the grid or arlib train trains it anew")
    return 0


def cmd_book(args) -> int:
    from .book.build.pipeline import build_book, chapter_names

    chapters = None if args.chapters is None else chapter_names(args.chapters)
    if chapters == []:
        raise ConfigError(f"--chapters {args.chapters!r} names no chapter")
    build_book(profile=args.profile, chapters=chapters, params_path=args.params, force=args.force, root=args.root, html=not args.no_html, strict=args.strict)
    if args.serve is not None:
        from .book.build.pipeline import serve_book

        serve_book(root=args.root, port=args.serve)
    return 0


def cmd_chapter(args) -> int:
    """``arlib chapter``: one chapter through papermill, its parameters checked first (:mod:`arlib.book.build.rerun`)."""
    if args.params:
        from .book.params import parameters_table

        print(parameters_table())
        return 0
    if not args.chapter:
        raise ConfigError("name a chapter (e.g. arlib chapter B5_smoothing), or --params to list the parameters")
    from .book.build.rerun import rerun_chapter

    rerun_chapter(args.chapter, args.p, args.output, profile=args.profile, train=args.train, root=args.root)
    return 0


def cmd_lab(args) -> int:
    """``arlib lab``: the chapters as notebooks in JupyterLab (:mod:`arlib.book.build.lab`)."""
    from .book.build.lab import run_lab

    run_lab(args.chapter, profile=args.profile, port=args.port, browser=not args.no_browser, lab_dir=args.dir, root=args.root)
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, like every other user error
        sys.stderr.write(f"arlib: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The ``arlib`` command line: one sub-command per job, each added by its own function below."""
    p = _Parser(prog="arlib", description="Adversarial robustness as regularisation: experiments of Wen, Li & Jia (ICML 2020).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_train_parser, _grid_parser, _eval_parser, _analyse_parser, _audit_parser, _runs_parser, _book_parser, _chapter_parser, _lab_parser):
        add(sub)
    return p


def _common_options(sp) -> None:
    """The options of every command that reads or writes the results store."""
    sp.add_argument("--results", default=None, help="results root; runs go to <root>/<profile>/runs (default: $ARLIB_RESULTS or ./results)")
    sp.add_argument("--data-root", default=None, help="where datasets are (default: $ARLIB_DATA, then the user cache)")
    sp.add_argument("--quiet", action="store_true", help="no progress bars")


def _train_parser(sub) -> None:
    """``arlib train``: one run, from a profile or a config file, with overrides."""
    t = sub.add_parser("train", help="train (or resume) one run")
    _common_options(t)
    t.add_argument("--profile", default="smoke")
    t.add_argument("--dataset", default="cifar10")
    t.add_argument("--config", help="a config.json to run instead of the profile's base config")
    t.add_argument("--eps", type=float, help="defensive strength on the 0-255 scale (0 = plain training)")
    t.add_argument("--method", choices=["pgd", "fgsm"], help="adversarial training method")
    t.add_argument("--alpha", type=float, help="PGD step on the 0-255 scale")
    t.add_argument("--steps", type=int)
    t.add_argument("--model")
    t.add_argument("--epochs", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--precision", choices=["fp32", "bf16", "auto"])
    t.add_argument("--spectral-norm", type=float, help="clip every layer's spectral norm to this after each epoch")
    t.add_argument("--analyse", "--analyze", action="store_true", help="also run the analysis of arlib.analysis")
    t.add_argument("--store", help="store name under the results root (default: the profile's, or 'custom' with --config); e.g. 'probes' for sizing runs")
    t.set_defaults(fn=cmd_train)


def _grid_parser(sub) -> None:
    """``arlib grid``: a profile's grid, here or as a SLURM job array."""
    g = sub.add_parser("grid", help="train and analyse every missing run of a profile's grid")
    _common_options(g)
    g.add_argument("--profile", default="smoke")
    g.add_argument("--datasets", help="comma-separated (default: all of the profile's)")
    g.add_argument("--experiments", help="comma-separated subset of pgd,fgsm,deep,spectral")
    g.add_argument("--dry-run", action="store_true", help="list the cells and their status")
    g.add_argument("--no-analyse", "--no-analyze", action="store_true")
    g.add_argument(
        "--executor",
        choices=["local", "slurm"],
        default="local",
        help="local: this process (start several to share the grid); slurm: one job array of the missing cells",
    )
    sl = g.add_argument_group("slurm", "with --executor slurm (logs in <results>/<profile>/slurm/)")
    sl.add_argument("--partition")
    sl.add_argument("--time", type=int, help="time limit per task, minutes (default 240); a task that reaches it is requeued and resumes")
    sl.add_argument("--cpus-per-task", type=int, help="CPUs per task, also torch's threads (default 1)")
    sl.add_argument("--mem-gb", type=float, help="memory per task in GB (default: the partition's)")
    sl.add_argument("--gpus-per-job", type=int, help="GPUs per task (default 0)")
    sl.add_argument("--array-parallelism", type=int, help="tasks running at once (default 256)")
    sl.add_argument("--slurm-arg", action="append", metavar="KEY=VALUE", help="any other sbatch option, e.g. account=abc or qos=high (repeatable)")
    sl.add_argument("--no-wait", action="store_true", help="print the job id and return instead of waiting for the cells")
    g.set_defaults(fn=cmd_grid)


def _eval_parser(sub) -> None:
    """``arlib eval``: PGD-evaluate a trained run."""
    e = sub.add_parser("eval", help="PGD-evaluate a trained run")
    _common_options(e)
    e.add_argument("run", help="run hash (a unique prefix is enough)")
    e.add_argument("--eps", type=float, default=8)
    e.add_argument("--alpha", type=float, default=2)
    e.add_argument("--steps", type=int, default=10)
    e.add_argument("--store", help="the store to look in when the hash is in several (e.g. smoke or custom, the folders under the results root)")
    e.set_defaults(fn=cmd_eval)


def _analyse_parser(sub) -> None:
    """``arlib analyse``: the analysis of finished runs that have none."""
    a = sub.add_parser("analyse", aliases=["analyze"], help="analyse finished runs that have no analysis yet")
    _common_options(a)
    a.add_argument("--run", help="only this run (hash prefix)")
    a.set_defaults(fn=cmd_analyse)


def _audit_parser(sub) -> None:
    """``arlib audit``: D.2's PGD-10 checked with APGD on a profile's PGD cells."""
    from .audit import AuditConfig

    a = sub.add_parser("audit", help="attack a profile's PGD cells with APGD-CE and APGD-DLR (is PGD-10 fooled?)")
    _common_options(a)
    a.add_argument("--profile", default="cpu", help="whose PGD cells (default cpu)")
    a.add_argument("--per-class", type=int, default=AuditConfig.per_class, help="test images a class, of the ones PGD-10 attacked (default %(default)s)")
    a.add_argument("--steps", type=int, default=AuditConfig.steps, help="APGD steps (default %(default)s)")
    a.set_defaults(fn=cmd_audit)


def _runs_parser(sub) -> None:
    """``arlib runs``: the store as a table, its check and its repair."""
    r = sub.add_parser("runs", help="list the results store")
    _common_options(r)
    r.add_argument(
        "--check",
        action="store_true",
        help="verify every run (parse, shapes, hashes, checksums, analysis, model and checkpoint load weights-only); exit 1 listing the damaged ones",
    )
    r.add_argument("--repair", metavar="HASH", help="move a damaged run's files aside (kept as <name>.damaged-<time>) so that it is trained anew")
    r.add_argument("--store", help="with --repair: the store to look in when the hash is in several")
    r.set_defaults(fn=cmd_runs)


def _book_parser(sub) -> None:
    """``arlib book``: execute the chapters and build the book."""
    from . import profiles

    b = sub.add_parser("book", help="execute the chapter notebooks and build the book")
    b.add_argument(
        "--profile",
        default=profiles.DEFAULT_BOOK_PROFILE,
        choices=list(profiles.PROFILES),
        help="smoke: seconds per run (CI); cpu: the committed small reproduction (both capacity regimes); cpu-high: "
        f"its high-capacity regime alone; paper: Appendix D (GPU). Default: {profiles.DEFAULT_BOOK_PROFILE}",
    )
    b.add_argument("--chapters", help="comma-separated chapter names (default: every chapter; unchanged ones are skipped)")
    b.add_argument("--params", default="book/params.yml", help="per-profile, per-chapter parameters (default: book/params.yml)")
    b.add_argument("--root", help="book root (default: the nearest directory with _toc.yml)")
    b.add_argument("--force", action="store_true", help="re-execute every chapter")
    b.add_argument("--no-html", action="store_true", help="execute the chapters only")
    b.add_argument("--strict", action="store_true", help="treat Sphinx warnings as errors")
    b.add_argument(
        "--serve",
        nargs="?",
        type=int,
        const=8000,
        default=None,
        metavar="PORT",
        help="after building, serve the HTML on http://127.0.0.1:PORT/ (default 8000) until Ctrl-C",
    )
    b.set_defaults(fn=cmd_book)


def _chapter_parser(sub) -> None:
    """``arlib chapter``: one chapter through papermill."""
    from . import profiles

    c = sub.add_parser(
        "chapter",
        help="rerun one chapter notebook with papermill (parameters checked first; trains nothing unless --train)",
        description="Execute notebooks/<CHAPTER>.md with papermill into a notebook. Every -p is checked against the "
        "chapter's parameters before anything runs (arlib chapter --params lists them).",
    )
    c.add_argument("chapter", nargs="?", help="a chapter of _toc.yml, or a unique prefix (B5)")
    c.add_argument(
        "-p",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help='set a parameter, e.g. -p eps_grid 0,8,16 (or "[0, 8, 16]"), -p seeds 0,1, -p ensure true (repeatable)',
    )
    c.add_argument("--profile", choices=list(profiles.PROFILES), help="the same as -p profile NAME (default: the notebook's, cpu)")
    c.add_argument("-o", "--output", help="the executed notebook (default: ./<CHAPTER>.ipynb)")
    c.add_argument(
        "--train", action="store_true", help="train and analyse the runs the chapter lacks first, one progress bar per run (the same as -p ensure true)"
    )
    c.add_argument("--params", action="store_true", help="list the chapters' parameters (name, type, default, meaning) and exit")
    c.add_argument("--root", help="book root (default: the nearest directory with _toc.yml)")
    c.set_defaults(fn=cmd_chapter)


def _lab_parser(sub) -> None:
    """``arlib lab``: the chapters as notebooks in JupyterLab."""
    from . import profiles

    lb = sub.add_parser("lab", help="open the chapters as notebooks in JupyterLab, on the committed results (no training)")
    lb.add_argument("chapter", nargs="?", help="the chapter to open (default: the first)")
    lb.add_argument("--profile", default="cpu", choices=list(profiles.PROFILES), help="the results the chapters read (default: cpu, committed)")
    lb.add_argument("--port", type=int, help="JupyterLab's port (default: 8888 or the next free one)")
    lb.add_argument("--no-browser", action="store_true", help="print the URL instead of opening a browser")
    lb.add_argument("--dir", help="where the notebook copies live (default: lab/ in the book's root, gitignored)")
    lb.add_argument("--root", help="book root (default: the nearest directory with _toc.yml)")
    lb.set_defaults(fn=cmd_lab)


class Stopped(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C (locks released, temporary files removed), then one line."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop(signum, frame):
    raise Stopped(signum)


def _stopped(args, signum: int) -> int:
    """The one line a stopping signal prints: what was saved and how to go on; exit 128 + the signal's number."""
    name = signal.Signals(signum).name
    command = getattr(args, "command", "")
    if command == "book":
        saved = "chapters executed before it are kept, the one being executed is discarded; rerun the same command to go on"
    elif command in ("train", "grid"):
        notes = getattr(args, "saved", None)  # what training last put on disk (arlib.train.train_run's on_saved)
        saved = f"{notes[-1] if notes else 'no epoch was checkpointed yet'}; rerun the same command to resume"
    elif command in ("analyse", "analyze"):
        saved = "finished analyses are kept; rerun the same command for the rest"
    else:
        saved = "nothing was written"
    sys.stderr.write(f"arlib: stopped by {name}; {saved}\n")
    return 128 + signum


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.saved = []  # one line each time training moves on what is on disk, for the line a stopping signal prints
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
    try:
        return args.fn(args)
    except ArlibError as e:
        sys.stderr.write(f"arlib: error: {e}\n")
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        # Disk full, read-only store or cache, no permission, a file where a folder should be:
        # the environment, not a bug. Anything else is a bug and keeps its traceback.
        from .store import ENVIRONMENT_ERRNOS, storage_error

        if e.errno not in ENVIRONMENT_ERRNOS:
            raise

        sys.stderr.write(f"arlib: error: {storage_error(Path(e.filename or '?'), e)}\n")
        return 2
    except KeyboardInterrupt:
        return _stopped(args, signal.SIGINT)
    except Stopped as e:
        return _stopped(args, e.signum)


if __name__ == "__main__":
    raise SystemExit(main())
